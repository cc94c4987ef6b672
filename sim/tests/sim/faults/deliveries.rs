//! The consumer side of the queue through faults: a consumer's stream that ends or hands out
//! deliveries out of order, and settlements that are lost or fail.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use tirage_ports::{Delivery, DeliveryHandle, JobStream, Lane, QueueError};
use tokio::sync::Notify;

use super::Injector;
use crate::life::HeldStream;

/// A stream broken by a failed settlement, and the wake-up of its waiting `next`.
#[derive(Default)]
struct Broken {
    flag: AtomicBool,
    wake: Notify,
}

impl Broken {
    fn set(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

/// A consumer's stream through faults.
pub struct FaultyStream {
    /// Taken away when the node is killed (see [`Life`]).
    inner: HeldStream,
    lane: Lane,
    faults: Injector,
    /// A delivery taken ahead of its turn (reordering): handed out next.
    stash: VecDeque<Delivery>,
    broken: Arc<Broken>,
}

impl FaultyStream {
    pub fn new(inner: HeldStream, lane: Lane, faults: Injector) -> FaultyStream {
        FaultyStream {
            inner,
            lane,
            faults,
            stash: VecDeque::new(),
            broken: Arc::new(Broken::default()),
        }
    }

    fn hand_out(&self, delivery: Delivery) -> Delivery {
        let Delivery {
            item,
            attempt,
            retry_spent,
            redelivered,
            trace,
            handle,
        } = delivery;
        let subject = self.faults.ledger.item_subject(&item);
        self.faults.ledger.note(
            &self.faults.actor,
            &format!("deliver.{}", self.lane.as_str()),
            &subject,
            &format!("attempt {attempt} redelivered={redelivered}"),
        );
        self.faults.ledger.count("deliveries");
        if redelivered {
            self.faults.ledger.count("redeliveries");
        }
        Delivery {
            item,
            attempt,
            retry_spent,
            redelivered,
            trace,
            handle: Box::new(FaultyHandle {
                inner: handle,
                faults: self.faults.clone(),
                broken: self.broken.clone(),
                subject,
            }),
        }
    }

    fn end(&self, why: &str) {
        self.faults.ledger.note(
            &self.faults.actor,
            &format!("stream.{}", self.lane.as_str()),
            "",
            why,
        );
    }
}

#[async_trait]
impl JobStream for FaultyStream {
    async fn next(&mut self) -> Option<Result<Delivery, QueueError>> {
        if self.broken.is_set() {
            self.end("ended: a settlement failed");
            return None;
        }
        if let Some(delivery) = self.stash.pop_front() {
            return Some(Ok(self.hand_out(delivery)));
        }
        let (end, reorder) = (
            self.faults.chance(self.faults.plan.stream_end),
            self.faults.chance(self.faults.plan.reorder),
        );
        if end {
            self.faults
                .fault(&format!("stream.{}", self.lane.as_str()), "stream_end", "");
            return None;
        }
        let broken = self.broken.clone();
        let life = self.faults.life.clone();
        let held = self.inner.clone();
        let mut inner = held.lock().await;
        let Some(stream) = inner.as_mut() else {
            drop(inner);
            return std::future::pending().await;
        };
        let next = tokio::select! {
            biased;
            () = life.killed() => None,
            () = broken.wake.notified() => Some(None),
            next = stream.next() => Some(Some(next)),
        };
        let Some(next) = next else {
            // Killed: the stream goes (its deliveries back to the queue), the node waits on.
            inner.take();
            drop(inner);
            return std::future::pending().await;
        };
        let Some(next) = next else {
            self.end("ended: a settlement failed");
            return None;
        };
        let first = match next {
            Some(Ok(delivery)) => delivery,
            other => return other,
        };
        // Taken now or not at all: only what the queue already holds for this consumer.
        let ahead = if reorder {
            stream.next().now_or_never()
        } else {
            None
        };
        drop(inner);
        if let Some(Some(Ok(second))) = ahead {
            let subject = self.faults.ledger.item_subject(&first.item);
            self.faults.fault(
                &format!("stream.{}", self.lane.as_str()),
                "reorder",
                &subject,
            );
            self.stash.push_back(first);
            return Some(Ok(self.hand_out(second)));
        }
        Some(Ok(self.hand_out(first)))
    }
}

/// A delivery's settlement through faults.
pub struct FaultyHandle {
    inner: Box<dyn DeliveryHandle>,
    faults: Injector,
    broken: Arc<Broken>,
    subject: String,
}

impl FaultyHandle {
    /// The settlement fails: the channel is taken for dead, the stream ends, and the
    /// message, never settled, goes back to the queue when the stream is dropped (the inner
    /// handle is dropped with `self`, unsettled).
    fn fail(&self, op: &str) -> Result<(), QueueError> {
        self.faults.fault(op, "settle_err", &self.subject);
        self.broken.set();
        Err(QueueError::Unavailable(format!("sim: {op} failed")))
    }

    fn settled(&self, op: &str) {
        self.faults
            .ledger
            .note(&self.faults.actor, op, &self.subject, "ok");
    }
}

#[async_trait]
impl DeliveryHandle for FaultyHandle {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        let (lost, failed) = (
            self.faults.chance(self.faults.plan.lost_ack),
            self.faults.chance(self.faults.plan.settle_err),
        );
        if failed {
            return self.fail("ack");
        }
        if lost {
            // The broker never saw the ack: it delivers the message again.
            self.faults.fault("ack", "lost_ack", &self.subject);
            let _requeued = self.faults.life.guard(self.inner.requeue()).await;
            return Ok(());
        }
        self.settled("ack");
        self.faults.life.guard(self.inner.ack()).await
    }

    async fn requeue(self: Box<Self>) -> Result<(), QueueError> {
        if self.faults.chance(self.faults.plan.settle_err) {
            return self.fail("requeue");
        }
        self.settled("requeue");
        self.faults.life.guard(self.inner.requeue()).await
    }

    async fn retry_later(
        self: Box<Self>,
        delay: Duration,
        spent: Duration,
    ) -> Result<(), QueueError> {
        if self.faults.chance(self.faults.plan.settle_err) {
            return self.fail("retry_later");
        }
        self.faults.ledger.note(
            &self.faults.actor,
            "retry_later",
            &self.subject,
            &format!("{} ms", delay.as_millis()),
        );
        self.faults.ledger.count("retries");
        self.faults.ledger.backed_off(&self.subject, delay);
        let retried = self.inner.retry_later(delay, spent);
        self.faults.life.guard(retried).await
    }

    async fn dead_letter(self: Box<Self>, reason: &str) -> Result<(), QueueError> {
        if self.faults.chance(self.faults.plan.settle_err) {
            return self.fail("dead_letter");
        }
        self.faults
            .ledger
            .note(&self.faults.actor, "dead_letter", &self.subject, reason);
        self.faults.ledger.count("dead_letters");
        self.faults.life.guard(self.inner.dead_letter(reason)).await
    }
}
