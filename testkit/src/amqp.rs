//! RabbitMQ for tests: queues of their own (`tirage-test.{uuid}.resize…`) that the broker
//! deletes once unused, and what tests do beyond the JobQueue port — publish unparsable
//! bytes, read the dead-letter queue, listen to events, cut the connection.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, QueueBindOptions};
use lapin::types::FieldTable;

use super::contract_queue;
use super::env::{TEST_EVENTS_EXCHANGE, TEST_QUEUE_EXPIRES_MS, amqp_url, unique};
use tirage_amqp::{AmqpQueue, AmqpSettings, QueueType, message, unavailable};
use tirage_ports::DeadLetter;
use tirage_ports::{Lane, QueueError, TraceContext};

/// AMQP settings with classic queues of their own that expire when unused.
pub fn amqp_settings() -> AmqpSettings {
    amqp_settings_of(QueueType::Classic)
}

/// AMQP settings with queues of their own, of `queue_type`, that expire when unused.
pub fn amqp_settings_of(queue_type: QueueType) -> AmqpSettings {
    AmqpSettings {
        url: amqp_url().into(),
        urls: Vec::new(),
        queue_prefix: format!("tirage-test.{}", unique()),
        events_exchange: TEST_EVENTS_EXCHANGE.to_owned(),
        queue_expires_ms: Some(TEST_QUEUE_EXPIRES_MS),
        queue_type,
    }
}

/// A connected AMQP queue on fresh queues; panics naming RabbitMQ when it is down.
pub async fn amqp_queue() -> AmqpQueue {
    amqp_queue_with(&amqp_settings()).await
}

pub async fn amqp_queue_with(settings: &AmqpSettings) -> AmqpQueue {
    AmqpQueue::connect(settings).await.unwrap_or_else(|e| {
        panic!("RabbitMQ is not reachable ({e}); start it or set TIRAGE_TEST_AMQP_URL")
    })
}

/// What tests do with an [`AmqpQueue`] beyond the JobQueue port.
#[async_trait]
pub trait AmqpTestExt {
    /// Publishes bytes as they are to the resize work queue, the way a foreign or broken publisher
    /// could; consumers dead-letter what does not parse.
    async fn publish_raw(&self, body: &[u8]) -> Result<(), QueueError>;
    /// Removes and returns the oldest message of the dead-letter queue.
    async fn take_dead_letter(&self) -> Result<Option<DeadLetter>, QueueError>;
    /// Binds a private, auto-deleted queue to the events exchange with `binding_key` (a
    /// topic pattern such as `batch.*`) and returns what arrives on it.
    async fn subscribe_events(&self, binding_key: &str) -> Result<EventSubscription, QueueError>;
    /// Closes the current connection as a broker restart would; the next publish or
    /// consume reconnects.
    async fn close_connection(&self);
    /// Deletes one of this queue's own queues, as an operator or a broker that lost it
    /// would; publishing to it then comes back unroutable.
    async fn delete_queue(&self, name: &str) -> Result<(), QueueError>;
}

#[async_trait]
impl AmqpTestExt for AmqpQueue {
    async fn publish_raw(&self, body: &[u8]) -> Result<(), QueueError> {
        let trace = TraceContext::none();
        self.connection()
            .publish_job(Lane::Resize, body, &trace)
            .await
    }

    async fn take_dead_letter(&self) -> Result<Option<DeadLetter>, QueueError> {
        let channel = self.connection().link().await?.channel().await?;
        let got = channel
            .basic_get(
                self.settings().dead_queue().as_str().into(),
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
                    attempt: message::attempt_of(&d.properties),
                    reason: message::reason_of(&d.properties),
                    body: d.data,
                })
            }
        };
        let _ = channel.close(200, "done".into()).await;
        Ok(result)
    }

    async fn subscribe_events(&self, binding_key: &str) -> Result<EventSubscription, QueueError> {
        let channel = self.connection().link().await?.channel().await?;
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
                self.settings().events_exchange.as_str().into(),
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

    async fn close_connection(&self) {
        if let Some(link) = self.connection().current().await {
            let _ = link.connection.close(320, "closed on purpose".into()).await;
        }
    }

    async fn delete_queue(&self, name: &str) -> Result<(), QueueError> {
        let channel = self.connection().link().await?.channel().await?;
        channel
            .queue_delete(name.into(), lapin::options::QueueDeleteOptions::default())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// Events delivered to an [`AmqpTestExt::subscribe_events`] binding.
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
impl contract_queue::EventProbe for EventSubscription {
    async fn next(&mut self) -> Option<(String, Vec<u8>)> {
        EventSubscription::next(self).await
    }
}

/// RabbitMQ on queues of its own.
pub struct AmqpHarness {
    pub queue: Arc<AmqpQueue>,
}

impl AmqpHarness {
    /// On classic queues (the default queue type).
    pub async fn new() -> Self {
        AmqpHarness::of(QueueType::Classic).await
    }

    /// On quorum queues: the same contract, as a replicated broker would run it (one
    /// replica on a single node, which changes none of the queue's semantics).
    pub async fn quorum() -> Self {
        AmqpHarness::of(QueueType::Quorum).await
    }

    pub async fn of(queue_type: QueueType) -> Self {
        AmqpHarness {
            queue: Arc::new(amqp_queue_with(&amqp_settings_of(queue_type)).await),
        }
    }
}

#[async_trait]
impl contract_queue::QueueHarness for AmqpHarness {
    fn queue(&self) -> Arc<dyn tirage_ports::JobQueue> {
        self.queue.clone()
    }

    async fn publish_raw(&self, body: &[u8]) {
        AmqpTestExt::publish_raw(&*self.queue, body).await.unwrap();
    }

    async fn take_dead_letter(&self) -> Option<DeadLetter> {
        // A dead letter is published before the delivery is acked, so it is already
        // there; the short retry only absorbs broker-side latency.
        for _ in 0..20 {
            if let Some(d) = AmqpTestExt::take_dead_letter(&*self.queue).await.unwrap() {
                return Some(d);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    }

    async fn subscribe_events(&self, routing_key: &str) -> Box<dyn contract_queue::EventProbe> {
        Box::new(
            AmqpTestExt::subscribe_events(&*self.queue, routing_key)
                .await
                .unwrap(),
        )
    }
}
