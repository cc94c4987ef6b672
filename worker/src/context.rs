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

use crate::callback_transport::{CallbackTransport, HttpCallbacks};
use crate::consumed::ConsumedReport;
use crate::cpu::{BlockingThreads, CpuPool, Offload};
use crate::failure::Failure;
use crate::gate::Gate;
use crate::host_slots::HostSlots;
use crate::metrics::Metrics;
use crate::settings::WorkerSettings;
use tracing::warn;

/// The function that turns one photo into renditions: [`tirage_engine::resize`], unless a
/// test or benchmark substitutes another.
pub type ResizeFn =
    Arc<dyn Fn(&[u8], &BatchOptions, &Limits) -> Result<Resized, EngineError> + Send + Sync>;

/// What a worker takes from outside besides its settings and ports: the engine, where its
/// runs execute, where randomness comes from, what time it is and where callbacks go.
/// [`Seams::production`] in the processes; benchmarks substitute the engine, the simulator
/// all five.
#[derive(Clone)]
pub struct Seams {
    pub resizer: ResizeFn,
    pub offload: Arc<dyn Offload>,
    pub entropy: Arc<dyn Entropy>,
    /// Dates run holds, effect claims, the consumed mark, completions and the reconciler's
    /// stall and expiry decisions. Intervals the worker only waits (timeouts, backoffs,
    /// lease renewals) are tokio's timers.
    pub clock: Arc<dyn Clock>,
    /// Where callbacks go: HTTP behind the SSRF guard ([`HttpCallbacks`]).
    pub callbacks: Arc<dyn CallbackTransport>,
}

impl Seams {
    /// The real engine on tokio's blocking threads, the OS's randomness and clock, callbacks
    /// over HTTP.
    pub fn production() -> Seams {
        Seams {
            resizer: Arc::new(tirage_engine::resize),
            offload: Arc::new(BlockingThreads),
            entropy: Arc::new(OsEntropy),
            clock: Arc::new(SystemClock),
            callbacks: Arc::new(HttpCallbacks),
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

    /// Runs `call` under [`Ctx::io`] until it answers anything but a transient failure,
    /// trying again after the job's backoff while `budget` has not passed since the first
    /// try, and running `between` before each new try. For a write the worker must not
    /// leave undone (the mark after an effect, the end of a run's hold): only a store that
    /// does not answer is worth trying again, and a batch that is gone has nothing left to
    /// write (retrying its `Gone` held a slot for the whole budget: `tirage-sim` seed 19888).
    pub async fn io_until<T, E, Fut, Between>(
        &self,
        what: &str,
        budget: Duration,
        mut call: impl FnMut() -> Fut,
        mut between: impl FnMut() -> Between,
    ) -> Result<T, Failure>
    where
        Fut: Future<Output = Result<T, E>>,
        Between: Future<Output = ()>,
        Failure: From<E>,
    {
        let started = tokio::time::Instant::now();
        let mut attempt = 1;
        loop {
            match self.io(what, call()).await {
                Err(failure @ Failure::Transient(_)) if started.elapsed() < budget => {
                    warn!(reason = ?failure, what, "not done; trying again");
                    tokio::time::sleep(self.retry_delay(attempt)).await;
                    attempt = attempt.saturating_add(1);
                    between().await;
                }
                answer => return answer,
            }
        }
    }
}
