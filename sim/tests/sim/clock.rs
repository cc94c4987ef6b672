//! Time in a run: tokio's paused clock read as a date. Every port and every process of a run
//! reads it (the state store's expiries, the object store's presigned URLs, the queue's
//! retry budgets, the workers' holds, claims and stall decisions, the API's dates), so what
//! the product decides by the date follows virtual time and the seed, never the real clock.
//! A node or replica may read it skewed: its own offset, drawn from the seed, that can jump
//! while it runs ([`SkewedClock`], [`actor_clock`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use tirage_ports::Clock;

use crate::ledger::Ledger;
use crate::rng::Stream;

/// Largest offset of a host's clock: within the 5 s the product allows between hosts
/// (`reconcile::backlog::CLOCK_SKEW`), for any two hosts.
const MAX_SKEW_MS: u64 = 2_000;

/// The shared clock of one run: a fixed date at the run's start, then tokio's virtual time.
pub struct VirtualClock {
    origin: DateTime<Utc>,
    start: tokio::time::Instant,
}

/// The date every run starts at, so that nothing a run records depends on when it ran.
fn origin() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// How long after the run's start the run's clock reads `date` (zero before the start).
pub fn since_start(date: DateTime<Utc>) -> std::time::Duration {
    (date - origin()).to_std().unwrap_or_default()
}

impl VirtualClock {
    /// Starts now (in virtual time), at [`origin`].
    pub fn start() -> VirtualClock {
        VirtualClock {
            origin: origin(),
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().duration_since(self.start);
        self.origin + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }
}

/// One node's view of the run's clock: the shared time plus an offset that the simulation
/// sets and may change while the node runs (a host whose clock is off, then stepped by NTP).
pub struct SkewedClock {
    base: Arc<dyn Clock>,
    offset_ms: AtomicI64,
}

impl SkewedClock {
    pub fn new(base: Arc<dyn Clock>, offset_ms: i64) -> SkewedClock {
        SkewedClock {
            base,
            offset_ms: AtomicI64::new(offset_ms),
        }
    }

    pub fn set_offset(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        self.base.now() + chrono::Duration::milliseconds(self.offset_ms())
    }
}

/// `actor`'s clock: the run's own for most, skewed by up to [`MAX_SKEW_MS`] either way for
/// about a third, some of which are stepped to another offset once, at a drawn time (an NTP
/// correction), recorded in the ledger.
pub fn actor_clock(
    seed: u64,
    base: &Arc<dyn Clock>,
    actor: &str,
    ledger: &Arc<Ledger>,
) -> Arc<dyn Clock> {
    let rng = Stream::derive(seed, &format!("clock/{actor}"));
    let skewed = rng.chance(0.3);
    let offset = signed_offset(&rng);
    let jumps = rng.chance(0.5);
    let (at, to) = (rng.millis(1_000, 120_000), signed_offset(&rng));
    if !skewed {
        return base.clone();
    }
    let clock = Arc::new(SkewedClock::new(base.clone(), offset));
    ledger.note(actor, "clock", "", &format!("offset {offset} ms"));
    if jumps {
        let (clock, ledger, actor) = (clock.clone(), ledger.clone(), actor.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(at).await;
            clock.set_offset(to);
            ledger.note(&actor, "clock", "", &format!("stepped to {to} ms"));
        });
    }
    clock
}

fn signed_offset(rng: &Stream) -> i64 {
    let magnitude = i64::try_from(rng.range(0, MAX_SKEW_MS)).unwrap_or(0);
    if rng.chance(0.5) {
        -magnitude
    } else {
        magnitude
    }
}
