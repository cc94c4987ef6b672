//! A worker's loops without its HTTP port: the two consumers (one per lane) and the
//! reconciler, over one shared [`Ctx`]. [`crate::Worker`] runs a node beside its
//! `/healthz`, `/readyz` and `/metrics` port; the simulator (`tirage-sim`) runs several
//! nodes on one thread, over fault-injecting ports, in virtual time.

use std::sync::Arc;

use tirage_ports::Lane;
use tokio_util::sync::CancellationToken;

use crate::consumed::ConsumedReport;
use crate::context::{Ctx, Ports, Seams};
use crate::cpu::CpuPool;
use crate::gate::Gate;
use crate::host_slots::HostSlots;
use crate::metrics::Metrics;
use crate::settings::WorkerSettings;
use crate::{WorkerError, consumer, reconcile};

/// One worker's shared state; cloning it shares it.
#[derive(Clone)]
pub struct Node {
    ctx: Arc<Ctx>,
}

impl Node {
    /// Validates the settings; nothing runs until a loop is awaited.
    pub fn new(
        settings: WorkerSettings,
        ports: Ports,
        seams: Seams,
        metrics: Metrics,
    ) -> Result<Node, WorkerError> {
        settings.validate()?;
        let ctx = Ctx {
            cpu: CpuPool::new(settings.effective_concurrency()),
            gate: Gate::new(
                ports.state.clone(),
                ports.objects.clone(),
                metrics.paused.clone(),
            ),
            callback_hosts: HostSlots::new(settings.callback_per_host),
            consumed: ConsumedReport::default(),
            draining: CancellationToken::new(),
            settings,
            ports,
            seams,
            metrics,
        };
        Ok(Node { ctx: Arc::new(ctx) })
    }

    /// Consumes `lane` until `stop`, then drains: in-flight jobs get the grace period, the
    /// rest go back to the queue. Returns once everything it took is settled.
    pub async fn consume(&self, lane: Lane, stop: CancellationToken) {
        consumer::consume(self.ctx.clone(), lane, stop).await;
    }

    /// Runs a reconciler pass every `reconcile_every_ms` while this node holds the lease,
    /// until `stop`.
    pub async fn reconcile(&self, stop: CancellationToken) {
        reconcile::run(self.ctx.clone(), stop).await;
    }

    /// One reconciler pass now, under the lease; `Ok(false)` when another holder has it.
    pub async fn reconcile_once(&self) -> Result<bool, WorkerError> {
        reconcile::once(&self.ctx)
            .await
            .map_err(|e| WorkerError::Reconcile(format!("{e:?}")))
    }

    pub fn metrics(&self) -> Metrics {
        self.ctx.metrics.clone()
    }

    /// Cancel it and the node takes no new job (its loops return once what they took is
    /// settled); its readiness answers 503 from then on.
    pub fn drain_token(&self) -> CancellationToken {
        self.ctx.draining.clone()
    }

    pub(crate) fn ctx(&self) -> Arc<Ctx> {
        self.ctx.clone()
    }
}
