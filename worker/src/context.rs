//! What every job task shares: the settings, the ports, the engine, the metrics and the CPU
//! pool; and the one way a task calls a dependency ([`Ctx::io`]).

use std::future::Future;
use std::sync::Arc;

use tirage_core::BatchOptions;
use tirage_engine::{EngineError, Limits, Resized};
pub use tirage_runtime::Ports;

use crate::consumed::ConsumedReport;
use crate::cpu::CpuPool;
use crate::failure::Failure;
use crate::gate::Gate;
use crate::host_slots::HostSlots;
use crate::metrics::Metrics;
use crate::settings::WorkerSettings;

/// The function that turns one photo into renditions: [`tirage_engine::resize`], unless a
/// test or benchmark substitutes another.
pub type ResizeFn =
    Arc<dyn Fn(&[u8], &BatchOptions, &Limits) -> Result<Resized, EngineError> + Send + Sync>;

/// What every job task shares.
pub(crate) struct Ctx {
    pub settings: WorkerSettings,
    pub ports: Ports,
    pub resizer: ResizeFn,
    pub metrics: Metrics,
    /// Bounds the CPU work to `concurrency` engine runs at once.
    pub cpu: CpuPool,
    /// Closed while a dependency is down: intake pauses.
    pub gate: Gate,
    /// Callbacks in flight per receiving host.
    pub callback_hosts: HostSlots,
    /// How far this worker has taken resize jobs (reported for the reconciler).
    pub consumed: ConsumedReport,
}

impl Ctx {
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
