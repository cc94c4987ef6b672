//! The production [`JobQueue`] on RabbitMQ (AMQP 0-9-1, lapin).
//!
//! Its settings are in [`settings`]; the queues and exchange it declares in [`topology`]
//! (declared on every (re)connection, as classic or quorum queues); message headers in
//! [`message`]; the connection, opened on first use and re-opened after it dies (on the next
//! node of a cluster when its own died), in [`connection`]; consuming and settling in
//! [`stream`]. Every publish waits for the broker's confirm.

pub mod connection;
mod dead_letters;
pub mod message;
mod settings;
mod stream;
mod topology;

use std::sync::Arc;

use async_trait::async_trait;
use lapin::BasicProperties;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use connection::LazyConnection;
pub use connection::unavailable;
pub use settings::{AmqpSettings, QueueType};
use stream::AmqpStream;
use tirage_ports::TraceContext;
use tirage_ports::job_queue::{JobQueue, JobStream, Lane, QueueError, WorkItem};

/// RabbitMQ job queue. Clones share the connection.
#[derive(Clone)]
pub struct AmqpQueue {
    connection: Arc<LazyConnection>,
}

impl AmqpQueue {
    /// Connects and declares the topology; fails with `Unavailable` when the broker is down.
    /// Later outages are healed lazily by the next publish or consume.
    pub async fn connect(settings: &AmqpSettings) -> Result<Self, QueueError> {
        let queue = AmqpQueue::lazy(settings);
        queue.connection.link().await?;
        Ok(queue)
    }

    /// A queue that connects (and declares its topology) on first use, so a process can
    /// start while the broker is down: until it is back, every call fails with
    /// `Unavailable`, and the first call after it returns connects.
    pub fn lazy(settings: &AmqpSettings) -> Self {
        AmqpQueue {
            connection: Arc::new(LazyConnection::new(settings)),
        }
    }

    pub fn settings(&self) -> &AmqpSettings {
        &self.connection.settings
    }

    /// The shared connection, for the test helpers (`testing::amqp`).
    pub fn connection(&self) -> &LazyConnection {
        &self.connection
    }
}

#[async_trait]
impl JobQueue for AmqpQueue {
    async fn publish(&self, item: &WorkItem, trace: &TraceContext) -> Result<(), QueueError> {
        let body = serde_json::to_vec(item)
            .map_err(|e| QueueError::Rejected(format!("message does not serialise: {e}")))?;
        self.connection.publish_job(item.lane(), &body, trace).await
    }

    async fn consume(&self, lane: Lane, prefetch: u16) -> Result<Box<dyn JobStream>, QueueError> {
        let stream = AmqpStream::open(self.connection.clone(), lane, prefetch).await?;
        Ok(Box::new(stream))
    }

    async fn waiting(&self, lane: Lane) -> Result<u64, QueueError> {
        let channel = self.connection.link().await?.channel().await?;
        let s = &self.connection.settings;
        let mut total = 0u64;
        for name in [s.work_queue(lane), s.delay_queue(lane)] {
            // Passive: reads the queue's count without declaring anything.
            let queue = channel
                .queue_declare(
                    name.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(connection::unavailable)?;
            total += u64::from(queue.message_count());
        }
        let _ = channel.close(200, "counted".into()).await;
        Ok(total)
    }

    async fn publish_event(&self, routing_key: &str, payload: &[u8]) -> Result<(), QueueError> {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        let exchange = &self.connection.settings.events_exchange;
        // Not mandatory: an exchange nobody listens to yet is not an error.
        self.connection
            .publish(exchange, routing_key, payload, props, false)
            .await
    }

    async fn ping(&self) -> Result<(), QueueError> {
        self.connection.link().await.map(drop)
    }
}
