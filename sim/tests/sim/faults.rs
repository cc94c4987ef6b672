//! The faults of one run, drawn from its seed, and the wrappers that inject them between a
//! node (or an API replica) and the shared adapters:
//! - [`FaultyQueue`]: a call fails before it reaches the broker, or after (the message went
//!   out, the confirm was lost), or hangs first; a publish is sometimes delayed, so that
//!   concurrent publishers overtake each other; a confirmed job is sometimes lost (a broker
//!   that lost its disk or a classic queue's node: only the reconciler brings it back);
//! - [`FaultyStream`]: the consumer's stream ends (its unsettled deliveries go back to the
//!   queue, redelivered), or hands out the delivery behind the next one first (reordering
//!   within the prefetch window);
//! - [`deliveries::FaultyHandle`]: an ack is lost (the message is requeued: a duplicate
//!   delivery), or a settlement fails, which breaks the consumer's stream as a dead channel
//!   does;
//! - [`FaultyObjects`]: a call fails before or after, or hangs (up to twice the worker's
//!   `io_timeout`, so that some time out); a read's body breaks off mid-way;
//! - the state store (`crate::state::ObservedState`): a call fails before or after, or
//!   hangs, through the same [`Injector::call`].
//!
//! Each wrapper draws from its own stream (`faults/<actor>/<port>`) and the same number of
//! values per call whether or not a fault fires, so that one fault more does not shift the
//! draws of every later call. Once the plan is healed no fault fires.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tirage_core::BatchCompleted;
use tirage_core::codes::Effect;
use tirage_ports::TraceContext;
use tirage_ports::dead_letters::Select;
use tirage_ports::{DeadLetter, DeadLetters, JobQueue, JobStream, Lane, QueueError, WorkItem};

use crate::ledger::Ledger;
use crate::life::{HeldStream, Life};
use crate::rng::Stream;

mod deliveries;
mod objects;

pub use deliveries::FaultyStream;
pub use objects::FaultyObjects;

/// The chances of each fault, per call. A calm plan injects none.
#[derive(Debug)]
pub struct FaultPlan {
    pub calm: bool,
    pub err_before: f64,
    pub err_after: f64,
    pub hang: f64,
    /// Longest hang: twice the longest `io_timeout` of the run's workers.
    pub hang_max: Duration,
    pub publish_delay: f64,
    /// A job the broker confirmed and then lost.
    pub lost_message: f64,
    pub lost_ack: f64,
    pub settle_err: f64,
    pub stream_end: f64,
    pub reorder: f64,
    pub body_break: f64,
    healed: AtomicBool,
}

impl FaultPlan {
    /// Calm for a fifth of the seeds; otherwise the base chances times an intensity of
    /// 0.5 to 2.
    pub fn draw(seed: u64, io_timeout: Duration) -> FaultPlan {
        let rng = Stream::derive(seed, "faults/plan");
        let calm = rng.chance(0.2);
        let k = 0.5 + 1.5 * rng.fraction();
        FaultPlan {
            calm,
            err_before: 0.03 * k,
            err_after: 0.01 * k,
            hang: 0.01 * k,
            hang_max: io_timeout.saturating_mul(2),
            publish_delay: 0.05 * k,
            lost_message: 0.005 * k,
            lost_ack: 0.02 * k,
            settle_err: 0.01 * k,
            stream_end: 0.005 * k,
            reorder: 0.05 * k,
            body_break: 0.01 * k,
            healed: AtomicBool::new(false),
        }
    }

    pub fn active(&self) -> bool {
        !self.calm && !self.healed.load(Ordering::Relaxed)
    }

    /// From now on no fault fires.
    pub fn heal(&self) {
        self.healed.store(true, Ordering::Relaxed);
    }

    pub fn healed(&self) -> bool {
        self.healed.load(Ordering::Relaxed)
    }
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Draw {
    Pass,
    Hang(Duration),
    ErrBefore,
    ErrAfter,
}

/// The fault source of one port of one actor.
#[derive(Clone)]
pub struct Injector {
    plan: Arc<FaultPlan>,
    rng: Arc<Stream>,
    ledger: Arc<Ledger>,
    actor: Arc<str>,
    port: &'static str,
    /// The actor's life: once it is killed, no call returns.
    life: Arc<Life>,
}

impl Injector {
    pub fn new(
        seed: u64,
        plan: Arc<FaultPlan>,
        ledger: Arc<Ledger>,
        (actor, life): (&str, &Arc<Life>),
        port: &'static str,
    ) -> Injector {
        Injector {
            rng: Arc::new(Stream::derive(seed, &format!("faults/{actor}/{port}"))),
            plan,
            ledger,
            actor: actor.into(),
            port,
            life: life.clone(),
        }
    }

    fn draw(&self) -> Draw {
        let (kind, length) = (self.rng.fraction(), self.rng.fraction());
        if !self.plan.active() {
            return Draw::Pass;
        }
        let p = &self.plan;
        if kind < p.err_before {
            Draw::ErrBefore
        } else if kind < p.err_before + p.err_after {
            Draw::ErrAfter
        } else if kind < p.err_before + p.err_after + p.hang {
            Draw::Hang(p.hang_max.mul_f64(length.max(0.05)))
        } else {
            Draw::Pass
        }
    }

    /// True with probability `p` while the plan is active (one draw either way).
    fn chance(&self, p: f64) -> bool {
        let x = self.rng.fraction();
        self.plan.active() && x < p
    }

    fn fault(&self, op: &str, kind: &str, subject: &str) {
        self.ledger.fault(&self.actor, self.port, op, kind, subject);
    }

    /// Runs `inner` with this call's fault: a hang before it, an error instead of it, or an
    /// error after it (the effect happened, its answer is lost). `after` is told when an
    /// answer was lost. Through the actor's life: once it is killed, no call returns.
    pub async fn call<T, E>(
        &self,
        op: &str,
        subject: &str,
        inner: impl Future<Output = Result<T, E>>,
        fail: fn(String) -> E,
        after: impl FnOnce(),
    ) -> Result<T, E> {
        let faulty = async {
            let draw = self.draw();
            match draw {
                Draw::ErrBefore => {
                    self.fault(op, "err_before", subject);
                    return Err(fail(format!("sim: {} {op} failed", self.port)));
                }
                Draw::Hang(d) => {
                    let op = format!("{}.{op}", self.port);
                    let result = format!("FAULT hang {} ms", d.as_millis());
                    self.ledger.note(&self.actor, &op, subject, &result);
                    self.ledger.count("fault.hang");
                    tokio::time::sleep(d).await;
                }
                Draw::ErrAfter | Draw::Pass => {}
            }
            let result = inner.await;
            if draw == Draw::ErrAfter && result.is_ok() {
                self.fault(op, "err_after", subject);
                after();
                return Err(fail(format!("sim: {} {op}: answer lost", self.port)));
            }
            result
        };
        self.life.guard(faulty).await
    }
}

fn queue_error(message: String) -> QueueError {
    QueueError::Unavailable(message)
}

/// The job queue through faults.
pub struct FaultyQueue {
    inner: Arc<dyn JobQueue>,
    calls: Injector,
    /// Draws of the consumer streams and their deliveries' settlements.
    deliveries: Injector,
}

impl FaultyQueue {
    pub fn new(inner: Arc<dyn JobQueue>, calls: Injector, deliveries: Injector) -> FaultyQueue {
        FaultyQueue {
            inner,
            calls,
            deliveries,
        }
    }
}

/// Dead letters are an operator's view, not in the simulated lifecycle: passed through.
#[async_trait]
impl DeadLetters for FaultyQueue {
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        self.inner.dead_letters(limit).await
    }

    async fn replay_dead_letters(
        &self,
        limit: usize,
        select: Select<'_>,
    ) -> Result<Vec<WorkItem>, QueueError> {
        self.inner.replay_dead_letters(limit, select).await
    }
}

#[async_trait]
impl JobQueue for FaultyQueue {
    async fn publish(&self, item: &WorkItem, trace: &TraceContext) -> Result<(), QueueError> {
        let subject = self.calls.ledger.item_subject(item);
        let delay = self.calls.chance(self.calls.plan.publish_delay);
        let delay_ms = self.calls.rng.range(1, 300);
        let lost = self.calls.chance(self.calls.plan.lost_message);
        let forward = async {
            if delay {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            if lost {
                self.calls.fault("publish", "lost_message", &subject);
                return Ok(());
            }
            let published = self.inner.publish(item, trace).await;
            if published.is_ok() {
                self.calls
                    .ledger
                    .note(&self.calls.actor, "publish", &subject, "ok");
            }
            published
        };
        self.calls
            .call("publish", &subject, forward, queue_error, || {})
            .await
    }

    async fn consume(&self, lane: Lane, prefetch: u16) -> Result<Box<dyn JobStream>, QueueError> {
        let subject = lane.as_str();
        let stream = self
            .calls
            .call(
                "consume",
                subject,
                self.inner.consume(lane, prefetch),
                queue_error,
                || {},
            )
            .await?;
        self.calls
            .ledger
            .note(&self.calls.actor, "consume", subject, "ok");
        let stream: HeldStream = Arc::new(tokio::sync::Mutex::new(Some(stream)));
        self.deliveries.life.hold(stream.clone());
        Ok(Box::new(FaultyStream::new(
            stream,
            lane,
            self.deliveries.clone(),
        )))
    }

    async fn waiting(&self, lane: Lane) -> Result<u64, QueueError> {
        let inner = self.inner.waiting(lane);
        self.calls
            .call("waiting", lane.as_str(), inner, queue_error, || {})
            .await
    }

    async fn publish_event(&self, routing_key: &str, payload: &[u8]) -> Result<(), QueueError> {
        let batch = serde_json::from_slice::<BatchCompleted>(payload)
            .ok()
            .map(|e| e.batch_id);
        let subject = batch.map_or_else(
            || routing_key.to_owned(),
            |b| self.calls.ledger.batch_label(b),
        );
        let ledger = self.calls.ledger.clone();
        let forward = async {
            let published = self.inner.publish_event(routing_key, payload).await;
            if published.is_ok() {
                ledger.note(&self.calls.actor, "publish_event", &subject, "ok");
                if let Some(b) = batch {
                    ledger.effect_happened(&self.calls.actor, b, Effect::Event);
                }
            }
            published
        };
        // The event went out, its publisher is told it failed: a second one is then
        // excused (see check.rs, I4).
        let excuse = || {
            if let Some(b) = batch {
                ledger.excuse(
                    b,
                    Effect::Event,
                    "a publish's confirm was lost after it went out",
                );
            }
        };
        self.calls
            .call("publish_event", &subject, forward, queue_error, excuse)
            .await
    }

    async fn ping(&self) -> Result<(), QueueError> {
        self.calls
            .call("ping", "", self.inner.ping(), queue_error, || {})
            .await
    }
}
