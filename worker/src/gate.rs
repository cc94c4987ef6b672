//! The outage gate: a dependency outage is a pause, not a reason to fail photos. When a job
//! fails transiently, the worker asks Redis and the object store whether they answer; if
//! one does not, the gate closes: the consumer takes no new delivery until both answer
//! again, and the jobs that failed meanwhile retry later without spending their attempt
//! budget (the failure was not theirs). A failure while both answer is the job's own, and
//! spends its budget as before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{info, warn};

use crate::context::Ctx;

/// How long one health probe may take before the dependency counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub(crate) struct Gate {
    closed: AtomicBool,
}

impl Gate {
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    fn open(&self) {
        self.closed.store(false, Ordering::Release);
    }
}

/// Whether Redis and the object store both answer now.
async fn dependencies_answer(ctx: &Ctx) -> Result<(), &'static str> {
    let state = tokio::time::timeout(PROBE_TIMEOUT, ctx.ports.state.ping());
    let objects = tokio::time::timeout(PROBE_TIMEOUT, ctx.ports.objects.ping());
    let (state, objects) = tokio::join!(state, objects);
    if !matches!(state, Ok(Ok(()))) {
        return Err("state store");
    }
    if !matches!(objects, Ok(Ok(()))) {
        return Err("object store");
    }
    Ok(())
}

/// After a transient failure: true when a dependency is down, and the gate is then closed.
pub(crate) async fn outage(ctx: &Ctx) -> bool {
    match dependencies_answer(ctx).await {
        Ok(()) => false,
        Err(which) => {
            if ctx.gate.close() {
                ctx.metrics.paused.set(1);
                warn!(
                    dependency = which,
                    "dependency down: pausing intake until it answers"
                );
            }
            true
        }
    }
}

/// Waits until the dependencies answer again (probing with `delay(n)` between tries), then
/// opens the gate. False when `stop` fired first.
pub(crate) async fn wait_until_open(
    ctx: &Ctx,
    stop: &tokio_util::sync::CancellationToken,
    delay: impl Fn(u32) -> Duration,
) -> bool {
    let mut tries = 0u32;
    loop {
        if dependencies_answer(ctx).await.is_ok() {
            ctx.gate.open();
            ctx.metrics.paused.set(0);
            info!("dependencies answer again: resuming intake");
            return true;
        }
        tries = tries.saturating_add(1);
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(delay(tries)) => {}
        }
    }
}
