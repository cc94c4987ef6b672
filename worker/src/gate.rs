//! The outage gate: a dependency outage is a pause, not a reason to fail photos. When a job
//! fails transiently, the worker asks Redis and the object store whether they answer; if
//! one does not, the gate closes: the consumer takes no new delivery until both answer
//! again, and the jobs that failed meanwhile retry later without spending their attempt
//! budget (the failure was not theirs). A failure while both answer is the job's own, and
//! spends its budget as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus::IntGauge;
use tirage_ports::{ObjectStore, StateStore};
use tracing::{info, warn};

/// How long one health probe may take before the dependency counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The gate, with what it probes and the gauge that shows it closed.
pub(crate) struct Gate {
    closed: AtomicBool,
    state: Arc<dyn StateStore>,
    objects: Arc<dyn ObjectStore>,
    /// `tirage_worker_paused`: 1 while closed.
    paused: IntGauge,
}

impl Gate {
    pub fn new(
        state: Arc<dyn StateStore>,
        objects: Arc<dyn ObjectStore>,
        paused: IntGauge,
    ) -> Gate {
        Gate {
            closed: AtomicBool::new(false),
            state,
            objects,
            paused,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether Redis and the object store both answer now.
    async fn dependencies_answer(&self) -> Result<(), &'static str> {
        let state = tokio::time::timeout(PROBE_TIMEOUT, self.state.ping());
        let objects = tokio::time::timeout(PROBE_TIMEOUT, self.objects.ping());
        let (state, objects) = tokio::join!(state, objects);
        if !matches!(state, Ok(Ok(()))) {
            return Err("state store");
        }
        if !matches!(objects, Ok(Ok(()))) {
            return Err("object store");
        }
        Ok(())
    }

    /// After a transient failure: true when a dependency is down, and the gate is then
    /// closed.
    pub async fn outage(&self) -> bool {
        match self.dependencies_answer().await {
            Ok(()) => false,
            Err(which) => {
                if !self.closed.swap(true, Ordering::AcqRel) {
                    self.paused.set(1);
                    warn!(
                        dependency = which,
                        "dependency down: pausing intake until it answers"
                    );
                }
                true
            }
        }
    }

    /// Whether both dependencies answer now, with the gate set to match: closed when one
    /// does not, opened when both do. For a loop that must not wait on the consumer to
    /// reopen the gate (the reconciler): a consumer blocked on an idle queue checks the gate
    /// only when a delivery comes, so a gate one failed probe closed would otherwise stay
    /// closed, and a lost job's batch stuck, until new work arrived.
    pub async fn check(&self) -> bool {
        if self.outage().await {
            return false;
        }
        self.open();
        true
    }

    /// Opens the gate, once the dependencies answered.
    fn open(&self) {
        if self.closed.swap(false, Ordering::AcqRel) {
            self.paused.set(0);
            info!("dependencies answer again: resuming intake");
        }
    }

    /// Waits until the dependencies answer again (probing with `delay(n)` between tries),
    /// then opens the gate. False when `stop` fired first.
    pub async fn wait_until_open(
        &self,
        stop: &tokio_util::sync::CancellationToken,
        delay: impl Fn(u32) -> Duration,
    ) -> bool {
        let mut tries = 0u32;
        loop {
            if self.dependencies_answer().await.is_ok() {
                self.open();
                return true;
            }
            tries = tries.saturating_add(1);
            tokio::select! {
                biased;
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(delay(tries)) => {}
            }
        }
    }
}
