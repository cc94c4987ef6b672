//! The production [`JobQueue`] on RabbitMQ (AMQP 0-9-1, lapin).
//!
//! Topology, declared on every (re)connection, all durable:
//! - `{prefix}.resize` — the work queue; persistent messages, manual acks, `basic.qos` prefetch.
//! - `{prefix}.resize.delay` — retries wait here with a per-message `expiration`, then
//!   dead-letter back into the work queue. RabbitMQ only expires messages at the head of a
//!   queue, so a short delay queued behind a longer one comes back late, never early.
//! - `{prefix}.resize.dead` — messages given up on (attempts exhausted, or unparsable), with
//!   the reason in the `x-tirage-dead-reason` header.
//! - the events topic exchange (default `tirage.events`).
//!
//! The attempt number travels in the `x-tirage-attempt` header. Every publish waits for the
//! broker's confirm. A publish after the connection died reconnects (bounded wait) first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::DeadLetter;
use crate::ports::job_queue::{
    Delivery, DeliveryHandle, JobQueue, JobStream, QueueError, WorkItem,
};

const ATTEMPT_HEADER: &str = "x-tirage-attempt";
const REASON_HEADER: &str = "x-tirage-dead-reason";
/// Longest a (re)connection or a confirmed publish may take before the caller gets
/// `Unavailable` instead of waiting on a dead broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed (re)connection, calls fail at once for this long instead of each trying
/// again: while the broker is down, requests get their 503 without queueing behind one
/// another's connection attempts.
const RECONNECT_COOLDOWN: Duration = Duration::from_millis(500);

fn default_prefix() -> String {
    "tirage".to_owned()
}

fn default_exchange() -> String {
    "tirage.events".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSettings {
    /// `amqp://user:password@host:5672/%2f` (a secret: it carries the password).
    pub url: SecretString,
    /// Queues are `{queue_prefix}.resize`, `.resize.delay` and `.resize.dead`.
    #[serde(default = "default_prefix")]
    pub queue_prefix: String,
    #[serde(default = "default_exchange")]
    pub events_exchange: String,
    /// `x-expires` on the queues: they vanish after this long unused. For tests only.
    #[serde(default)]
    pub queue_expires_ms: Option<u32>,
}

impl AmqpSettings {
    pub fn work_queue(&self) -> String {
        format!("{}.resize", self.queue_prefix)
    }

    pub fn delay_queue(&self) -> String {
        format!("{}.resize.delay", self.queue_prefix)
    }

    pub fn dead_queue(&self) -> String {
        format!("{}.resize.dead", self.queue_prefix)
    }
}

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

/// A live connection with its confirm-mode publishing channel.
#[derive(Clone)]
struct Link {
    connection: Arc<Connection>,
    publisher: Channel,
}

impl Link {
    fn alive(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

struct Inner {
    settings: AmqpSettings,
    link: tokio::sync::Mutex<Option<Link>>,
    /// When the last connection attempt failed, and why.
    last_failure: std::sync::Mutex<Option<(Instant, String)>>,
}

/// RabbitMQ job queue. Clones share the connection.
#[derive(Clone)]
pub struct AmqpQueue {
    inner: Arc<Inner>,
}

fn persistent(attempt: u32) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        ATTEMPT_HEADER.into(),
        AMQPValue::LongLongInt(i64::from(attempt)),
    );
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_headers(headers)
}

fn header<'a>(props: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(&ShortString::from(name)))
}

fn attempt_of(props: &BasicProperties) -> u32 {
    let n = match header(props, ATTEMPT_HEADER) {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortUInt(n)) => i64::from(*n),
        _ => 1,
    };
    u32::try_from(n).unwrap_or(1).max(1)
}

fn reason_of(props: &BasicProperties) -> String {
    match header(props, REASON_HEADER) {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.as_str().to_owned(),
        _ => String::new(),
    }
}

impl Inner {
    fn queue_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        if let Some(ms) = self.settings.queue_expires_ms {
            args.insert("x-expires".into(), AMQPValue::LongLongInt(i64::from(ms)));
        }
        args
    }

    async fn open(&self) -> Result<Link, QueueError> {
        let connection = Connection::connect(
            self.settings.url.expose_secret(),
            ConnectionProperties::default(),
        )
        .await
        .map_err(unavailable)?;
        let publisher = connection.create_channel().await.map_err(unavailable)?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        let s = &self.settings;
        publisher
            .exchange_declare(
                s.events_exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        let mut delay_args = self.queue_args();
        delay_args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        delay_args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(s.work_queue().into()),
        );
        for (name, args) in [
            (s.work_queue(), self.queue_args()),
            (s.delay_queue(), delay_args),
            (s.dead_queue(), self.queue_args()),
        ] {
            publisher
                .queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
                .await
                .map_err(unavailable)?;
        }
        Ok(Link {
            connection: Arc::new(connection),
            publisher,
        })
    }

    /// The current link, reconnecting when the last one died (at most one attempt per
    /// [`RECONNECT_COOLDOWN`]).
    async fn link(&self) -> Result<Link, QueueError> {
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
        let opened = match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(opened) => opened,
            Err(_) => Err(QueueError::Unavailable("AMQP connect timed out".into())),
        };
        match opened {
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
    async fn publish(
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

    async fn publish_work(
        &self,
        queue: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), QueueError> {
        self.publish("", queue, body, props, true).await
    }

    async fn dead_letter(&self, body: &[u8], attempt: u32, reason: &str) -> Result<(), QueueError> {
        let mut props = persistent(attempt);
        if let Some(headers) = props.headers().clone() {
            let mut headers = headers;
            headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
            props = props.with_headers(headers);
        }
        self.publish_work(&self.settings.dead_queue(), body, props)
            .await
    }
}

impl AmqpQueue {
    /// Connects and declares the topology; fails with `Unavailable` when the broker is down.
    /// Later outages are healed lazily by the next publish or consume.
    pub async fn connect(settings: &AmqpSettings) -> Result<Self, QueueError> {
        let queue = AmqpQueue::lazy(settings);
        queue.inner.link().await?;
        Ok(queue)
    }

    /// A queue that connects (and declares its topology) on first use, so a process can
    /// start while the broker is down: until it is back, every call fails with
    /// `Unavailable`, and the first call after it returns connects.
    pub fn lazy(settings: &AmqpSettings) -> Self {
        AmqpQueue {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                link: tokio::sync::Mutex::new(None),
                last_failure: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Closes the current connection as a broker restart would; the next publish or consume
    /// reconnects. Tests use it to prove that recovery.
    pub async fn close_connection(&self) {
        if let Some(link) = self.inner.link.lock().await.as_ref() {
            let _ = link.connection.close(320, "closed on purpose".into()).await;
        }
    }

    pub fn settings(&self) -> &AmqpSettings {
        &self.inner.settings
    }

    /// Publishes bytes as they are, the way a foreign or broken publisher could; consumers
    /// dead-letter what does not parse. Meant for tests.
    pub async fn publish_raw(&self, body: &[u8]) -> Result<(), QueueError> {
        self.inner
            .publish_work(&self.inner.settings.work_queue(), body, persistent(1))
            .await
    }

    /// Removes and returns the oldest message of the dead-letter queue.
    pub async fn take_dead_letter(&self) -> Result<Option<DeadLetter>, QueueError> {
        let link = self.inner.link().await?;
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        let got = channel
            .basic_get(
                self.inner.settings.dead_queue().as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .map_err(unavailable)?;
        let result = match got {
            None => None,
            Some(message) => {
                let d = message.delivery;
                d.acker
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(unavailable)?;
                Some(DeadLetter {
                    attempt: attempt_of(&d.properties),
                    reason: reason_of(&d.properties),
                    body: d.data,
                })
            }
        };
        let _ = channel.close(200, "done".into()).await;
        Ok(result)
    }

    /// Binds a private, auto-deleted queue to the events exchange with `binding_key`
    /// (a topic pattern such as `batch.*`) and returns what arrives on it.
    pub async fn subscribe_events(
        &self,
        binding_key: &str,
    ) -> Result<EventSubscription, QueueError> {
        let link = self.inner.link().await?;
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        channel
            .queue_bind(
                queue.name().clone(),
                self.inner.settings.events_exchange.as_str().into(),
                binding_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        Ok(EventSubscription {
            _channel: channel,
            consumer,
        })
    }
}

/// Events delivered to a [`AmqpQueue::subscribe_events`] binding.
pub struct EventSubscription {
    _channel: Channel,
    consumer: lapin::Consumer,
}

impl EventSubscription {
    /// The next event as (routing key, payload); `None` when the channel closed.
    pub async fn next(&mut self) -> Option<(String, Vec<u8>)> {
        match self.consumer.next().await {
            Some(Ok(d)) => Some((d.routing_key.as_str().to_owned(), d.data)),
            _ => None,
        }
    }
}

#[async_trait]
impl JobQueue for AmqpQueue {
    async fn publish(&self, item: &WorkItem) -> Result<(), QueueError> {
        let body = serde_json::to_vec(item)
            .map_err(|e| QueueError::Rejected(format!("message does not serialise: {e}")))?;
        self.publish_raw(&body).await
    }

    async fn consume(&self, prefetch: u16) -> Result<Box<dyn JobStream>, QueueError> {
        let link = self.inner.link().await?;
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(unavailable)?;
        let consumer = channel
            .basic_consume(
                self.inner.settings.work_queue().as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        Ok(Box::new(AmqpStream {
            inner: self.inner.clone(),
            channel,
            consumer,
            finished: false,
        }))
    }

    async fn publish_event(&self, routing_key: &str, payload: &[u8]) -> Result<(), QueueError> {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        let exchange = self.inner.settings.events_exchange.clone();
        // Not mandatory: an exchange nobody listens to yet is not an error.
        self.inner
            .publish(&exchange, routing_key, payload, props, false)
            .await
    }

    async fn ping(&self) -> Result<(), QueueError> {
        self.inner.link().await.map(drop)
    }
}

struct AmqpStream {
    inner: Arc<Inner>,
    channel: Channel,
    consumer: lapin::Consumer,
    finished: bool,
}

#[async_trait]
impl JobStream for AmqpStream {
    async fn next(&mut self) -> Option<Result<Delivery, QueueError>> {
        while !self.finished {
            let delivery = match self.consumer.next().await {
                None => {
                    self.finished = true;
                    return None;
                }
                Some(Err(e)) => {
                    self.finished = true;
                    return Some(Err(unavailable(e)));
                }
                Some(Ok(delivery)) => delivery,
            };
            let attempt = attempt_of(&delivery.properties);
            match serde_json::from_slice::<WorkItem>(&delivery.data) {
                Ok(item) => {
                    return Some(Ok(Delivery {
                        item,
                        attempt,
                        redelivered: delivery.redelivered,
                        handle: Box::new(AmqpHandle {
                            inner: self.inner.clone(),
                            acker: delivery.acker,
                            body: delivery.data,
                            attempt,
                        }),
                    }));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dead-lettering a message that does not parse");
                    let reason = format!("malformed: {e}");
                    let parked = self
                        .inner
                        .dead_letter(&delivery.data, attempt, &reason)
                        .await;
                    let settled = match parked {
                        Ok(()) => delivery.acker.ack(BasicAckOptions::default()).await,
                        Err(_) => {
                            delivery
                                .acker
                                .nack(BasicNackOptions {
                                    requeue: true,
                                    ..Default::default()
                                })
                                .await
                        }
                    };
                    if let Err(e) = parked {
                        return Some(Err(e));
                    }
                    if let Err(e) = settled {
                        return Some(Err(unavailable(e)));
                    }
                }
            }
        }
        None
    }
}

impl Drop for AmqpStream {
    fn drop(&mut self) {
        // Closing the channel hands every unsettled delivery back to the broker, exactly as
        // if this consumer's connection had died.
        let channel = self.channel.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = channel.close(200, "consumer dropped".into()).await;
            });
        }
    }
}

struct AmqpHandle {
    inner: Arc<Inner>,
    acker: lapin::Acker,
    body: Vec<u8>,
    attempt: u32,
}

impl AmqpHandle {
    async fn settle(&self, requeue: Option<bool>) -> Result<(), QueueError> {
        let done = match requeue {
            None => self.acker.ack(BasicAckOptions::default()).await,
            Some(requeue) => {
                self.acker
                    .nack(BasicNackOptions {
                        requeue,
                        ..Default::default()
                    })
                    .await
            }
        }
        .map_err(unavailable)?;
        if done {
            Ok(())
        } else {
            Err(QueueError::Unavailable(
                "the delivery's channel is closed; the broker will redeliver it".into(),
            ))
        }
    }
}

#[async_trait]
impl DeliveryHandle for AmqpHandle {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        self.settle(None).await
    }

    async fn requeue(self: Box<Self>) -> Result<(), QueueError> {
        self.settle(Some(true)).await
    }

    async fn retry_later(self: Box<Self>, delay: Duration) -> Result<(), QueueError> {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).max(1);
        let props =
            persistent(self.attempt.saturating_add(1)).with_expiration(ms.to_string().into());
        self.inner
            .publish_work(&self.inner.settings.delay_queue(), &self.body, props)
            .await?;
        self.settle(None).await
    }

    async fn dead_letter(self: Box<Self>, reason: &str) -> Result<(), QueueError> {
        self.inner
            .dead_letter(&self.body, self.attempt, reason)
            .await?;
        self.settle(None).await
    }
}
