//! The in-process queue for tests: what tests do beyond the JobQueue port, and its contract
//! harness.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::contract_queue;
use tirage_embedded::InProcessQueue;
use tirage_embedded::inprocess::Event;
use tirage_ports::DeadLetter;
use tirage_ports::{Lane, QueueError};

/// What tests do with an [`InProcessQueue`] beyond the JobQueue port.
#[async_trait]
pub trait InProcessTestExt {
    /// Enqueues bytes as they are on the resize lane, the way a foreign or broken publisher
    /// could; consumers dead-letter what does not parse.
    async fn publish_raw(&self, body: &[u8]) -> Result<(), QueueError>;
    /// Removes and returns the oldest dead letter.
    async fn take_dead_letter(&self) -> Result<Option<DeadLetter>, QueueError>;
    /// Every event published from now on.
    fn subscribe_events(&self) -> broadcast::Receiver<Event>;
    /// Messages waiting for a consumer (not counting delayed retries or unsettled ones).
    fn ready_len(&self) -> usize;
}

#[async_trait]
impl InProcessTestExt for InProcessQueue {
    async fn publish_raw(&self, body: &[u8]) -> Result<(), QueueError> {
        self.enqueue_raw(Lane::Resize, body);
        Ok(())
    }

    async fn take_dead_letter(&self) -> Result<Option<DeadLetter>, QueueError> {
        Ok(self.pop_dead_letter())
    }

    fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.events()
    }

    fn ready_len(&self) -> usize {
        InProcessQueue::ready_len(self)
    }
}

/// A fresh in-process queue.
#[derive(Default)]
pub struct InProcessHarness {
    pub queue: Arc<InProcessQueue>,
}

/// Events with one routing key: an in-process "binding" is exact-match.
struct BroadcastProbe(broadcast::Receiver<Event>, String);

#[async_trait]
impl contract_queue::EventProbe for BroadcastProbe {
    async fn next(&mut self) -> Option<(String, Vec<u8>)> {
        loop {
            match self.0.recv().await {
                Ok(e) if e.routing_key == self.1 => return Some((e.routing_key, e.payload)),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    }
}

#[async_trait]
impl contract_queue::QueueHarness for InProcessHarness {
    fn queue(&self) -> Arc<dyn tirage_ports::JobQueue> {
        self.queue.clone()
    }

    async fn publish_raw(&self, body: &[u8]) {
        InProcessTestExt::publish_raw(&*self.queue, body)
            .await
            .unwrap();
    }

    async fn take_dead_letter(&self) -> Option<DeadLetter> {
        InProcessTestExt::take_dead_letter(&*self.queue)
            .await
            .unwrap()
    }

    async fn subscribe_events(&self, routing_key: &str) -> Box<dyn contract_queue::EventProbe> {
        Box::new(BroadcastProbe(
            InProcessTestExt::subscribe_events(&*self.queue),
            routing_key.to_owned(),
        ))
    }
}
