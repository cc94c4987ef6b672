//! The `[amqp]` settings: where the broker is, what the queues are called, and which queue
//! type they are declared as.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use tirage_ports::job_queue::Lane;

fn default_prefix() -> String {
    "tirage".to_owned()
}

fn default_exchange() -> String {
    "tirage.events".to_owned()
}

/// Which RabbitMQ queue type the work, delay and dead-letter queues are declared as.
///
/// A queue's type is fixed when it is first declared: declaring it again as the other type
/// fails with `PRECONDITION_FAILED` (inequivalent arg `x-queue-type`). Switching a running
/// deployment means new queues — a new `queue_prefix` — or draining and deleting the old
/// ones first (docs/DEPLOY.md, "Replicated queues").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// One node holds each queue: fine for one broker, lost with that node's disk.
    #[default]
    Classic,
    /// Replicated with Raft on (up to five of) the cluster's nodes; a publish is confirmed
    /// once a majority stored it, and the queue survives a minority of its nodes dying.
    Quorum,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSettings {
    /// `amqp://user:password@host:5672/%2f` (a secret: it carries the password). Not used
    /// when `urls` is set.
    pub url: SecretString,
    /// The nodes of a RabbitMQ cluster, each as a full URL like `url`. When set, a
    /// (re)connection tries the node that last worked first, then the others in this
    /// order, so a process moves to a live node when its own dies.
    #[serde(default)]
    pub urls: Vec<SecretString>,
    /// Queues are `{queue_prefix}.resize`, `.resize.delay`, `.effects`, `.effects.delay`
    /// and `.resize.dead` (the dead letters of both lanes).
    #[serde(default = "default_prefix")]
    pub queue_prefix: String,
    #[serde(default = "default_exchange")]
    pub events_exchange: String,
    /// `x-expires` on the queues: they vanish after this long unused. For tests only.
    #[serde(default)]
    pub queue_expires_ms: Option<u32>,
    /// `classic` or `quorum` (replicated; for a RabbitMQ cluster of three nodes or more).
    #[serde(default)]
    pub queue_type: QueueType,
}

impl AmqpSettings {
    /// The lane's work queue: `{prefix}.resize` or `{prefix}.effects`.
    pub fn work_queue(&self, lane: Lane) -> String {
        format!("{}.{}", self.queue_prefix, lane.as_str())
    }

    /// Where the lane's retries wait: `{prefix}.resize.delay` or `{prefix}.effects.delay`.
    pub fn delay_queue(&self, lane: Lane) -> String {
        format!("{}.{}.delay", self.queue_prefix, lane.as_str())
    }

    /// The one dead-letter queue of every lane (each message names its kind).
    pub fn dead_queue(&self) -> String {
        format!("{}.resize.dead", self.queue_prefix)
    }

    /// The URLs a connection may use, in the order given: `urls`, or `url` alone.
    pub(super) fn endpoints(&self) -> Vec<&SecretString> {
        if self.urls.is_empty() {
            vec![&self.url]
        } else {
            self.urls.iter().collect()
        }
    }
}

/// `host:port` of an AMQP URL, for logs and errors: never the credentials or the vhost.
pub(super) fn node_of(url: &SecretString) -> String {
    let url = url.expose_secret();
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: serde_json::Value) -> Result<AmqpSettings, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn the_queue_type_is_classic_unless_set() {
        let s = parse(serde_json::json!({"url": "amqp://h/%2f"})).unwrap();
        assert_eq!(s.queue_type, QueueType::Classic);
        let s = parse(serde_json::json!({"url": "amqp://h/%2f", "queue_type": "quorum"})).unwrap();
        assert_eq!(s.queue_type, QueueType::Quorum);
        // A typo is refused at start rather than declaring classic queues by surprise.
        assert!(
            parse(serde_json::json!({"url": "amqp://h/%2f", "queue_type": "mirrored"})).is_err()
        );
    }

    #[test]
    fn urls_replace_url_in_their_order() {
        let s = parse(serde_json::json!({"url": "amqp://one/%2f"})).unwrap();
        let nodes: Vec<String> = s.endpoints().into_iter().map(node_of).collect();
        assert_eq!(nodes, ["one"]);
        let s = parse(serde_json::json!({
            "url": "amqp://one/%2f",
            "urls": ["amqp://u:secret@a:5672/%2f", "amqp://u:secret@b:5673"],
        }))
        .unwrap();
        let nodes: Vec<String> = s.endpoints().into_iter().map(node_of).collect();
        assert_eq!(nodes, ["a:5672", "b:5673"], "no password in what is logged");
    }
}
