//! What the reconciler saw at its last pass, as gauges an operator pages on: messages waiting
//! per lane, how long the oldest waiting job may have waited, and batches without progress.
//! The worker holding the reconciler's lease sets them; every other worker keeps them at 0,
//! so that `max` across workers is the fleet's figure.

use std::time::Duration;

use prometheus::{Gauge, IntGauge, IntGaugeVec, Opts, Registry};
use tirage_ports::Lane;

#[derive(Clone)]
pub struct BacklogGauges {
    waiting: IntGaugeVec,
    oldest_waiting: Gauge,
    stalled: IntGauge,
}

impl BacklogGauges {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let waiting = IntGaugeVec::new(
            Opts::new(
                "tirage_worker_jobs_waiting",
                "Messages waiting for a consumer on each lane, ready or delayed, at the reconciler's last pass (0 on workers without its lease)",
            ),
            &["lane"],
        )?;
        // Every lane from the start: a series that appears only later cannot be alerted on.
        for lane in Lane::ALL {
            waiting.with_label_values(&[lane.as_str()]).set(0);
        }
        let oldest_waiting = Gauge::new(
            "tirage_worker_oldest_waiting_job_seconds",
            "At most how long the oldest waiting resize job has waited, at the reconciler's last pass (0 when none waits)",
        )?;
        let stalled = IntGauge::new(
            "tirage_worker_batches_stalled",
            "Batches without progress for stall_after_ms at the reconciler's last whole pass, waiting behind a backlog or repaired",
        )?;
        registry.register(Box::new(waiting.clone()))?;
        registry.register(Box::new(oldest_waiting.clone()))?;
        registry.register(Box::new(stalled.clone()))?;
        Ok(BacklogGauges {
            waiting,
            oldest_waiting,
            stalled,
        })
    }

    /// The queue as the reconciler counted it.
    pub fn queue(&self, lane: Lane, waiting: u64, oldest: Duration) {
        let waiting = i64::try_from(waiting).unwrap_or(i64::MAX);
        self.waiting
            .with_label_values(&[lane.as_str()])
            .set(waiting);
        if lane == Lane::Resize {
            self.oldest_waiting.set(oldest.as_secs_f64());
        }
    }

    /// Batches a whole pass found without progress for `stall_after_ms`.
    pub fn stalled(&self, batches: u64) {
        self.stalled.set(i64::try_from(batches).unwrap_or(i64::MAX));
    }

    /// This worker does not hold the reconciler's lease: its figures would only be stale.
    pub fn clear(&self) {
        for lane in Lane::ALL {
            self.waiting.with_label_values(&[lane.as_str()]).set(0);
        }
        self.oldest_waiting.set(0.0);
        self.stalled.set(0);
    }

    /// What the last pass set (tests read it): waiting per lane, oldest wait, stalled.
    pub fn read(&self, lane: Lane) -> (i64, f64, i64) {
        (
            self.waiting.with_label_values(&[lane.as_str()]).get(),
            self.oldest_waiting.get(),
            self.stalled.get(),
        )
    }
}
