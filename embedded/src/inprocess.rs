//! The embedded [`JobQueue`]: a broker in the process's memory with the semantics the workers
//! rely on from RabbitMQ — manual settlement, a prefetch bound per consumer, delayed retries,
//! a bounded dead-letter list, and unsettled deliveries coming back when their consumer goes away
//! (as a broker does when a consumer's connection dies).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, broadcast};

use tirage_ports::job_queue::{
    Delivery, DeliveryHandle, JobQueue, JobStream, Lane, QueueError, WorkItem,
};
use tirage_ports::{DeadLetter, TraceContext};

mod dead_letters;

/// Events kept for a slow subscriber before it starts missing some.
const EVENT_BUFFER: usize = 1024;
/// Dead letters kept for inspection (the newest); each is also logged when parked.
const DEAD_LETTERS_KEPT: usize = 1024;

/// An event published with [`JobQueue::publish_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub routing_key: String,
    pub payload: Vec<u8>,
}

struct Message {
    /// Where it waits, and where it comes back to after a retry or requeue.
    lane: Lane,
    body: Vec<u8>,
    attempt: u32,
    retry_spent: Duration,
    redelivered: bool,
    trace: TraceContext,
}

#[derive(Default)]
struct State {
    /// Ready messages of each lane.
    ready: HashMap<Lane, VecDeque<Message>>,
    /// Retries of each lane waiting out their delay.
    delayed: HashMap<Lane, usize>,
    /// Delivery tag → (consumer id, message).
    unacked: HashMap<u64, (u64, Message)>,
    /// Consumer id → deliveries it holds unsettled.
    in_flight: HashMap<u64, usize>,
    dead: VecDeque<DeadLetter>,
    next_tag: u64,
    next_consumer: u64,
}

impl State {
    fn lane(&mut self, lane: Lane) -> &mut VecDeque<Message> {
        self.ready.entry(lane).or_default()
    }

    /// Parks a dead letter, forgetting the oldest once [`DEAD_LETTERS_KEPT`] are parked: a
    /// process that runs for months keeps a bounded window of them, never all.
    fn park(&mut self, letter: DeadLetter) {
        tracing::warn!(reason = %letter.reason, attempt = letter.attempt, "message dead-lettered");
        if self.dead.len() >= DEAD_LETTERS_KEPT {
            self.dead.pop_front();
        }
        self.dead.push_back(letter);
    }
}

struct Shared {
    state: Mutex<State>,
    /// Woken on every change a waiting consumer may care about (new message, settlement).
    changed: Notify,
    events: broadcast::Sender<Event>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing inside the lock panics, so a poisoned lock still holds consistent data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, message: Message) {
        self.lock().lane(message.lane).push_back(message);
        self.changed.notify_waiters();
    }

    /// Removes an unsettled delivery from its consumer's account.
    fn settle(&self, state: &mut State, tag: u64) -> Result<Message, QueueError> {
        let (consumer, message) = state.unacked.remove(&tag).ok_or_else(|| {
            QueueError::Unavailable(
                "delivery is no longer held (its consumer was dropped); it will be redelivered"
                    .into(),
            )
        })?;
        if let Some(n) = state.in_flight.get_mut(&consumer) {
            *n = n.saturating_sub(1);
        }
        Ok(message)
    }
}

/// In-process job queue. Clones share the same queue.
#[derive(Clone)]
pub struct InProcessQueue {
    shared: Arc<Shared>,
}

impl Default for InProcessQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessQueue {
    pub fn new() -> Self {
        InProcessQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Notify::new(),
                events: broadcast::channel(EVENT_BUFFER).0,
            }),
        }
    }

    /// Enqueues a message's bytes on `lane` as a first attempt.
    fn enqueue(&self, lane: Lane, body: Vec<u8>, trace: TraceContext) {
        self.shared.push(Message {
            lane,
            body,
            attempt: 1,
            retry_spent: Duration::ZERO,
            redelivered: false,
            trace,
        });
    }

    /// The queue seen from outside its port, as the test kit and an operator's view need
    /// it: enqueue unchecked bytes, take a dead letter, follow the events, count what is
    /// ready.
    pub fn enqueue_raw(&self, lane: Lane, body: &[u8]) {
        self.enqueue(lane, body.to_vec(), TraceContext::none());
    }

    pub fn pop_dead_letter(&self) -> Option<DeadLetter> {
        self.shared.lock().dead.pop_front()
    }

    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    pub fn ready_len(&self) -> usize {
        self.shared.lock().ready.values().map(VecDeque::len).sum()
    }
}

#[async_trait]
impl JobQueue for InProcessQueue {
    async fn publish(&self, item: &WorkItem, trace: &TraceContext) -> Result<(), QueueError> {
        let body = serde_json::to_vec(item)
            .map_err(|e| QueueError::Rejected(format!("message does not serialise: {e}")))?;
        self.enqueue(item.lane(), body, trace.clone());
        Ok(())
    }

    async fn consume(&self, lane: Lane, prefetch: u16) -> Result<Box<dyn JobStream>, QueueError> {
        let id = {
            let mut state = self.shared.lock();
            state.next_consumer += 1;
            let id = state.next_consumer;
            state.in_flight.insert(id, 0);
            id
        };
        Ok(Box::new(InProcessStream {
            shared: self.shared.clone(),
            lane,
            id,
            prefetch: usize::from(prefetch.max(1)),
        }))
    }

    async fn waiting(&self, lane: Lane) -> Result<u64, QueueError> {
        let mut state = self.shared.lock();
        let delayed = state.delayed.get(&lane).copied().unwrap_or(0);
        let ready = state.lane(lane).len();
        Ok(u64::try_from(ready + delayed).unwrap_or(u64::MAX))
    }

    async fn publish_event(&self, routing_key: &str, payload: &[u8]) -> Result<(), QueueError> {
        // Nobody listening is not an error: a topic exchange without bindings drops too.
        let _ = self.shared.events.send(Event {
            routing_key: routing_key.to_owned(),
            payload: payload.to_vec(),
        });
        Ok(())
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

struct InProcessStream {
    shared: Arc<Shared>,
    lane: Lane,
    id: u64,
    prefetch: usize,
}

impl InProcessStream {
    /// The next deliverable message, if the prefetch bound allows one.
    fn try_take(&self) -> Option<Delivery> {
        let mut state = self.shared.lock();
        loop {
            if state.in_flight.get(&self.id).copied().unwrap_or(0) >= self.prefetch {
                return None;
            }
            let message = state.lane(self.lane).pop_front()?;
            let item = match serde_json::from_slice::<WorkItem>(&message.body) {
                Ok(item) => item,
                Err(e) => {
                    tracing::warn!(error = %e, "dead-lettering a message that does not parse");
                    state.park(DeadLetter {
                        body: message.body,
                        attempt: message.attempt,
                        reason: format!("malformed: {e}"),
                    });
                    continue;
                }
            };
            state.next_tag += 1;
            let tag = state.next_tag;
            let (attempt, retry_spent, redelivered, trace) = (
                message.attempt,
                message.retry_spent,
                message.redelivered,
                message.trace.clone(),
            );
            state.unacked.insert(tag, (self.id, message));
            *state.in_flight.entry(self.id).or_insert(0) += 1;
            return Some(Delivery {
                item,
                attempt,
                retry_spent,
                redelivered,
                trace,
                handle: Box::new(InProcessHandle {
                    shared: self.shared.clone(),
                    tag,
                }),
            });
        }
    }
}

#[async_trait]
impl JobStream for InProcessStream {
    async fn next(&mut self) -> Option<Result<Delivery, QueueError>> {
        loop {
            // Register for wake-ups before looking, so a publish in between is not missed.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(delivery) = self.try_take() {
                return Some(Ok(delivery));
            }
            changed.await;
        }
    }
}

impl Drop for InProcessStream {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let mut orphaned: Vec<(u64, Message)> = Vec::new();
        let tags: Vec<u64> = state
            .unacked
            .iter()
            .filter(|(_, (consumer, _))| *consumer == self.id)
            .map(|(tag, _)| *tag)
            .collect();
        for tag in tags {
            if let Some((_, message)) = state.unacked.remove(&tag) {
                orphaned.push((tag, message));
            }
        }
        // Back to the head of the queue, oldest first, as a broker requeues them.
        orphaned.sort_by_key(|(tag, _)| std::cmp::Reverse(*tag));
        for (_, mut message) in orphaned {
            message.redelivered = true;
            state.lane(message.lane).push_front(message);
        }
        state.in_flight.remove(&self.id);
        drop(state);
        self.shared.changed.notify_waiters();
    }
}

struct InProcessHandle {
    shared: Arc<Shared>,
    tag: u64,
}

#[async_trait]
impl DeliveryHandle for InProcessHandle {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        let result = {
            let mut state = self.shared.lock();
            self.shared.settle(&mut state, self.tag).map(drop)
        };
        self.shared.changed.notify_waiters();
        result
    }

    async fn requeue(self: Box<Self>) -> Result<(), QueueError> {
        let result = {
            let mut state = self.shared.lock();
            self.shared.settle(&mut state, self.tag).map(|mut message| {
                message.redelivered = true;
                state.lane(message.lane).push_front(message);
            })
        };
        self.shared.changed.notify_waiters();
        result
    }

    async fn retry_later(
        self: Box<Self>,
        delay: Duration,
        spent: Duration,
    ) -> Result<(), QueueError> {
        let message = {
            let mut state = self.shared.lock();
            self.shared.settle(&mut state, self.tag)?
        };
        self.shared.changed.notify_waiters();
        *self.shared.lock().delayed.entry(message.lane).or_default() += 1;
        let retry = Message {
            lane: message.lane,
            body: message.body,
            attempt: message.attempt.saturating_add(1),
            retry_spent: spent,
            redelivered: false,
            trace: message.trace,
        };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            {
                let mut state = shared.lock();
                if let Some(n) = state.delayed.get_mut(&retry.lane) {
                    *n = n.saturating_sub(1);
                }
            }
            shared.push(retry);
        });
        Ok(())
    }

    async fn dead_letter(self: Box<Self>, reason: &str) -> Result<(), QueueError> {
        let result = {
            let mut state = self.shared.lock();
            self.shared.settle(&mut state, self.tag).map(|message| {
                state.park(DeadLetter {
                    body: message.body,
                    attempt: message.attempt,
                    reason: reason.to_owned(),
                });
            })
        };
        self.shared.changed.notify_waiters();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dead_letters_kept_are_the_newest_and_bounded() {
        let mut state = State::default();
        let extra = 3;
        for attempt in 0..DEAD_LETTERS_KEPT + extra {
            state.park(DeadLetter {
                body: Vec::new(),
                attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                reason: "test".into(),
            });
        }
        assert_eq!(state.dead.len(), DEAD_LETTERS_KEPT);
        let oldest = state.dead.front().map(|d| d.attempt);
        assert_eq!(
            oldest,
            u32::try_from(extra).ok(),
            "the oldest were forgotten"
        );
    }
}
