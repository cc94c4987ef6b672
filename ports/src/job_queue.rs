//! How work travels from the API to the workers (RabbitMQ in production, an in-process
//! queue when embedded). Delivery is at-least-once: every consumer must be idempotent.

use std::time::Duration;

use async_trait::async_trait;

use crate::dead_letters::DeadLetters;
use crate::trace_context::TraceContext;
pub use crate::work_item::{Lane, QueueError, WorkItem};

#[async_trait]
pub trait JobQueue: DeadLetters {
    /// Publishes a persistent message on its lane ([`WorkItem::lane`]) and returns only once
    /// the broker has confirmed it. `trace` travels with the message (its headers) and comes
    /// back on its every delivery, retries included.
    async fn publish(&self, item: &WorkItem, trace: &TraceContext) -> Result<(), QueueError>;

    /// Starts consuming one lane with at most `prefetch` unacknowledged deliveries in
    /// flight. A retried delivery ([`DeliveryHandle::retry_later`]) comes back on the lane it
    /// was taken from.
    async fn consume(&self, lane: Lane, prefetch: u16) -> Result<Box<dyn JobStream>, QueueError>;

    /// Messages of `lane` waiting for a consumer: ready in its queue or waiting out a
    /// retry's delay (deliveries in flight not counted). The reconciler reads it: while
    /// nothing waits, a photo still queued with no progress has lost its job.
    async fn waiting(&self, lane: Lane) -> Result<u64, QueueError>;

    /// Publishes an event (for example `batch.completed`) to the events topic exchange,
    /// confirmed like [`JobQueue::publish`].
    async fn publish_event(&self, routing_key: &str, payload: &[u8]) -> Result<(), QueueError>;

    /// Proves the broker answers; used by `/readyz`.
    async fn ping(&self) -> Result<(), QueueError>;
}

/// A consumer. Dropping it hands every delivery it gave out and that is still unsettled back
/// to the queue (as a broker does when a consumer's connection dies), and their handles can
/// no longer settle them: keep the stream alive until in-flight deliveries are settled.
#[async_trait]
pub trait JobStream: Send {
    /// The next delivery; `None` once the consumer is cancelled or its connection is gone
    /// (the caller then consumes again). Messages that do not parse never come out of here:
    /// the adapter dead-letters them itself.
    async fn next(&mut self) -> Option<Result<Delivery, QueueError>>;
}

/// One message handed to a consumer. Exactly one of the handle's methods settles it.
pub struct Delivery {
    pub item: WorkItem,
    /// 1 on the first attempt; +1 each time the job went through [`DeliveryHandle::retry_later`].
    pub attempt: u32,
    /// How much of its retry budget the job had spent when it last went through
    /// [`DeliveryHandle::retry_later`] (zero before), as its handler counted it: time spent
    /// trying and backing off, never time spent waiting in a queue behind other jobs.
    pub retry_spent: Duration,
    /// The broker says this exact message was delivered before (a crash or lost ack).
    pub redelivered: bool,
    /// The trace context it was published with (empty when none).
    pub trace: TraceContext,
    pub handle: Box<dyn DeliveryHandle>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("item", &self.item)
            .field("attempt", &self.attempt)
            .field("retry_spent", &self.retry_spent)
            .field("redelivered", &self.redelivered)
            .field("trace", &self.trace)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait DeliveryHandle: Send + Sync {
    /// Done: the broker forgets the message. Call only after every output is stored.
    async fn ack(self: Box<Self>) -> Result<(), QueueError>;
    /// Puts the message back for any worker now (used when draining on shutdown).
    async fn requeue(self: Box<Self>) -> Result<(), QueueError>;
    /// Publishes the message again, with `attempt + 1`, its trace context and
    /// `retry_spent` = `spent`, to come back after `delay` (a delay queue dead-lettering
    /// into the work queue), then acks this delivery.
    async fn retry_later(
        self: Box<Self>,
        delay: Duration,
        spent: Duration,
    ) -> Result<(), QueueError>;
    /// Moves the message to the dead-letter queue with `reason`, then acks this delivery.
    async fn dead_letter(self: Box<Self>, reason: &str) -> Result<(), QueueError>;
}
