//! The lazy connection: opened (and the topology declared) on first use, re-opened after
//! it dies — on another node of the cluster when `[amqp] urls` names several and its own is
//! gone — and every publish confirmed by the broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use secrecy::{ExposeSecret, SecretString};

use super::message;
use super::settings::{AmqpSettings, node_of};
use super::topology;
use tirage_ports::TraceContext;
use tirage_ports::job_queue::{Lane, QueueError};

/// Longest a connection to one node or a confirmed publish may take before the caller gets
/// `Unavailable` (or the next node is tried) instead of waiting on a dead broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed (re)connection, calls fail at once for this long instead of each trying
/// again: while the broker is down, requests get their 503 without queueing behind one
/// another's connection attempts.
const RECONNECT_COOLDOWN: Duration = Duration::from_millis(500);

pub fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

/// A live connection with its confirm-mode publishing channel.
#[derive(Clone)]
pub struct Link {
    pub connection: Arc<Connection>,
    publisher: Channel,
}

impl Link {
    fn alive(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }

    /// A fresh channel on this connection, for a consumer or a one-off read.
    pub async fn channel(&self) -> Result<Channel, QueueError> {
        self.connection.create_channel().await.map_err(unavailable)
    }
}

/// The connection shared by an [`super::AmqpQueue`] and its clones.
pub struct LazyConnection {
    pub settings: AmqpSettings,
    link: tokio::sync::Mutex<Option<Link>>,
    /// When the last connection attempt failed, and why.
    last_failure: std::sync::Mutex<Option<(Instant, String)>>,
    /// Which of the settings' URLs the next (re)connection tries first: the one that last
    /// accepted a connection, so a process that moved to another node stays there instead
    /// of moving back and forth.
    preferred: AtomicUsize,
}

impl LazyConnection {
    pub fn new(settings: &AmqpSettings) -> Self {
        LazyConnection {
            settings: settings.clone(),
            link: tokio::sync::Mutex::new(None),
            last_failure: std::sync::Mutex::new(None),
            preferred: AtomicUsize::new(0),
        }
    }

    /// Connects to the preferred node, then to the others in their order, each within
    /// [`CONNECT_TIMEOUT`]; fails with every node's reason when none answers.
    async fn open(&self) -> Result<Link, QueueError> {
        let endpoints = self.settings.endpoints();
        let count = endpoints.len().max(1);
        let first = self.preferred.load(Ordering::Relaxed) % count;
        let mut failures = Vec::new();
        for index in (0..count).map(|k| (first + k) % count) {
            let Some(url) = endpoints.get(index) else {
                continue;
            };
            // The next node is preferred until this one answers: a caller that gives up
            // during a hanging attempt (a readiness probe allows 1 s) drops this future, and
            // the next call then starts past the node that hung instead of on it again.
            self.preferred.store((index + 1) % count, Ordering::Relaxed);
            let opened = tokio::time::timeout(CONNECT_TIMEOUT, self.open_on(url))
                .await
                .unwrap_or_else(|_| Err("connect timed out".to_owned()));
            match opened {
                Ok(link) => {
                    if index != first {
                        tracing::warn!(node = %node_of(url), "AMQP connected to another node");
                    }
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(link);
                }
                Err(why) => failures.push(format!("{}: {why}", node_of(url))),
            }
        }
        Err(QueueError::Unavailable(format!(
            "AMQP: {}",
            failures.join("; ")
        )))
    }

    /// A connection to one node, with its confirm-mode channel and the topology declared.
    async fn open_on(&self, url: &SecretString) -> Result<Link, String> {
        let connection = Connection::connect(url.expose_secret(), ConnectionProperties::default())
            .await
            .map_err(|e| e.to_string())?;
        let publisher = connection
            .create_channel()
            .await
            .map_err(|e| e.to_string())?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        if let Err(e) = topology::declare(&publisher, &self.settings).await {
            // Not left open: a connection whose declaration failed is of no use.
            let _ = connection.close(200, "declaration failed".into()).await;
            return Err(topology::explain(&e, &self.settings));
        }
        Ok(Link {
            connection: Arc::new(connection),
            publisher,
        })
    }

    /// The current link, reconnecting when the last one died (at most one round of the
    /// nodes per [`RECONNECT_COOLDOWN`]).
    pub async fn link(&self) -> Result<Link, QueueError> {
        let mut slot = self.link.lock().await;
        if let Some(link) = slot.as_ref().filter(|l| l.alive()) {
            return Ok(link.clone());
        }
        if let Some(dead) = slot.take() {
            tracing::warn!("AMQP connection lost; reconnecting");
            let _ = dead.connection.close(320, "reconnecting".into()).await;
        }
        if let Some(why) = self.recent_failure() {
            return Err(QueueError::Unavailable(why));
        }
        match self.open().await {
            Ok(link) => {
                *slot = Some(link.clone());
                self.set_failure(None);
                Ok(link)
            }
            Err(e) => {
                self.set_failure(Some(e.to_string()));
                Err(e)
            }
        }
    }

    /// The current link if one is open, without connecting.
    pub async fn current(&self) -> Option<Link> {
        self.link.lock().await.clone()
    }

    /// The last connection failure, if it is recent enough to answer with instead of trying.
    fn recent_failure(&self) -> Option<String> {
        let last = self.last_failure.lock().ok()?;
        let (at, why) = last.as_ref()?;
        (at.elapsed() < RECONNECT_COOLDOWN).then(|| why.clone())
    }

    fn set_failure(&self, why: Option<String>) {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = why.map(|why| (Instant::now(), why));
        }
    }

    /// Forgets `link` if it is still the current one, so the next call reconnects.
    async fn invalidate(&self, link: &Link) {
        let mut slot = self.link.lock().await;
        if slot
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(&l.connection, &link.connection))
        {
            *slot = None;
        }
    }

    /// Publishes and waits for the broker's confirm; on a broken connection it reconnects
    /// and tries once more (a duplicate is harmless: consumers are idempotent).
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
        mandatory: bool,
    ) -> Result<(), QueueError> {
        let mut last = None;
        for _ in 0..2 {
            let link = self.link().await?;
            let attempt = async {
                let confirm = link
                    .publisher
                    .basic_publish(
                        exchange.into(),
                        routing_key.into(),
                        BasicPublishOptions {
                            mandatory,
                            ..Default::default()
                        },
                        body,
                        props.clone(),
                    )
                    .await?;
                confirm.await
            };
            match tokio::time::timeout(PUBLISH_TIMEOUT, attempt).await {
                Ok(Ok(Confirmation::Ack(None) | Confirmation::NotRequested)) => return Ok(()),
                Ok(Ok(Confirmation::Ack(Some(returned)))) => {
                    return Err(QueueError::Rejected(format!(
                        "unroutable: {}",
                        returned.reply_text
                    )));
                }
                Ok(Ok(Confirmation::Nack(_))) => {
                    return Err(QueueError::Rejected("negative publisher confirm".into()));
                }
                Ok(Err(e)) => last = Some(unavailable(e)),
                Err(_) => last = Some(QueueError::Unavailable("publish confirm timed out".into())),
            }
            self.invalidate(&link).await;
        }
        Err(last.unwrap_or_else(|| QueueError::Unavailable("publish failed".into())))
    }

    /// Publishes to one of our queues (mandatory: an unroutable message is an error).
    pub async fn publish_to_queue(
        &self,
        queue: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), QueueError> {
        self.publish("", queue, body, props, true).await
    }

    /// Publishes a job's bytes to its lane's work queue as a first attempt.
    pub async fn publish_job(
        &self,
        lane: Lane,
        body: &[u8],
        trace: &TraceContext,
    ) -> Result<(), QueueError> {
        let queue = self.settings.work_queue(lane);
        self.publish_to_queue(&queue, body, message::persistent(1, trace))
            .await
    }

    /// Parks a message in the dead-letter queue with why it was given up on.
    pub async fn dead_letter(
        &self,
        body: &[u8],
        attempt: u32,
        trace: &TraceContext,
        reason: &str,
    ) -> Result<(), QueueError> {
        self.publish_to_queue(
            &self.settings.dead_queue(),
            body,
            message::dead(attempt, trace, reason),
        )
        .await
    }
}
