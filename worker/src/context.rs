//! What every job task shares: the settings, the ports, the seams (engine, where it runs,
//! randomness, time), the metrics and the CPU pool; and the one way a task calls a dependency
//! ([`Ctx::io`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tirage_core::BatchOptions;
use tirage_core::backoff::Backoff;
use tirage_engine::{EngineError, Limits, Resized};
use tirage_ports::{Clock, Entropy, OsEntropy, SystemClock};
pub use tirage_runtime::Ports;

use crate::consumed::ConsumedReport;
use crate::cpu::{BlockingThreads, CpuPool, Offload};
use crate::failure::Failure;
use crate::gate::Gate;
use crate::host_slots::HostSlots;
use crate::metrics::Metrics;
use crate::settings::WorkerSettings;

/// The function that turns one photo into renditions: [`tirage_engine::resize`], unless a
/// test or benchmark substitutes another.
pub type ResizeFn =
    Arc<dyn Fn(&[u8], &BatchOptions, &Limits) -> Result<Resized, EngineError> + Send + Sync>;

/// What a worker takes from outside besides its settings and ports: the engine, where its
/// runs execute, where randomness comes from and what time it is. [`Seams::production`] in
/// the processes; benchmarks substitute the engine, the simulator all four.
#[derive(Clone)]
pub struct Seams {
    pub resizer: ResizeFn,
    pub offload: Arc<dyn Offload>,
    pub entropy: Arc<dyn Entropy>,
    /// Dates run holds, effect claims, the consumed mark, completions and the reconciler's
    /// stall and expiry decisions. Intervals the worker only waits (timeouts, backoffs,
    /// lease renewals) are tokio's timers.
    pub clock: Arc<dyn Clock>,
}

impl Seams {
    /// The real engine on tokio's blocking threads, the OS's randomness.
    pub fn production() -> Seams {
        Seams {
            resizer: Arc::new(tirage_engine::resize),
            offload: Arc::new(BlockingThreads),
            entropy: Arc::new(OsEntropy),
            clock: Arc::new(SystemClock),
        }
    }
}

/// What every job task shares.
pub(crate) struct Ctx {
    pub settings: WorkerSettings,
    pub ports: Ports,
    pub seams: Seams,
    pub metrics: Metrics,
    /// Bounds the CPU work to `concurrency` engine runs at once.
    pub cpu: CpuPool,
    /// Closed while a dependency is down: intake pauses.
    pub gate: Gate,
    /// Callbacks in flight per receiving host.
    pub callback_hosts: HostSlots,
    /// How far this worker has taken resize jobs (reported for the reconciler).
    pub consumed: ConsumedReport,
    /// Cancelled once the worker takes no new job: drained (`tirage-worker admin drain`)
    /// or stopping. Its readiness probe then answers 503.
    pub draining: tokio_util::sync::CancellationToken,
}

impl Ctx {
    /// What time it is, by the worker's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.seams.clock.now()
    }

    /// The wait before attempt `attempt + 1` of a job that failed transiently: the one
    /// retry rule of every job kind (and of a hold or a mark the worker must not leave).
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        Backoff::new(
            Duration::from_millis(self.settings.retry_base_ms),
            Duration::from_millis(self.settings.retry_cap_ms),
        )
        .delay_with(attempt, self.seams.entropy.fraction())
    }

    /// Runs one dependency call under the configured timeout; a timeout is transient.
    pub async fn io<T, E>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Failure>
    where
        Failure: From<E>,
    {
        match tokio::time::timeout(self.settings.io_timeout(), fut).await {
            Ok(r) => r.map_err(Failure::from),
            Err(_) => Err(Failure::Transient(format!("{what} timed out"))),
        }
    }
}
