//! One handle on Redis whether it is a single server or a Redis Cluster, so the store's
//! code is the same for both: [`Connection`] routes each command (a cluster command to the
//! master of its key's slot, following MOVED and ASK after a failover or a resharding).
//! Every script touches the keys of one slot only (the layout in [`super::keys`] puts a
//! batch's keys under one hash tag), which is what a cluster requires.
//!
//! Progress announcements use classic pub/sub, which a cluster broadcasts to every node: a
//! subscriber listens on whichever node of the list answers first ([`Subscribers`]).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::RedisSettings;
use super::codec::{redis_error, unavailable};
use tirage_ports::StateError;

/// Bounded waits: a dead Redis must turn into a 503 within seconds, not a hung request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A multiplexed connection to a single Redis or to a cluster: concurrent calls are
/// pipelined on it, and it reconnects by itself after a failure. Cloning is cheap.
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// The servers a progress subscription may listen on, tried in order.
pub(crate) struct Subscribers(Vec<redis::Client>);

impl Subscribers {
    pub fn clients(&self) -> &[redis::Client] {
        &self.0
    }
}

/// Builds the connection without opening it: it opens on first use and re-opens after
/// failures, so this succeeds while Redis is down. Call it within a tokio runtime.
pub(crate) fn open(settings: &RedisSettings) -> Result<(Connection, Subscribers), StateError> {
    let clients = settings
        .server_urls()
        .into_iter()
        .map(redis::Client::open)
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    let connection = if settings.cluster_urls.is_empty() {
        let client = clients
            .first()
            .cloned()
            .ok_or_else(|| StateError::Unavailable("no Redis URL configured".into()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        Connection::Single(
            ConnectionManager::new_lazy_with_config(client, config).map_err(redis_error)?,
        )
    } else {
        let client = ClusterClientBuilder::new(settings.cluster_urls.iter().map(String::as_str))
            // Retries follow MOVED/ASK and reconnect to a promoted replica; the waits
            // between them stay short so a request fails fast while no master serves a slot.
            .retries(3)
            .min_retry_wait(50)
            .max_retry_wait(500)
            .build()
            .map_err(unavailable)?;
        let config = ClusterConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        Connection::Cluster(client.get_pending_async_connection_with_config(config))
    };
    Ok((connection, Subscribers(clients)))
}
