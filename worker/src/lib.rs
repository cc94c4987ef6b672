//! Tirage's worker: consumes resize jobs, runs the engine on a bounded CPU pool, writes the
//! renditions to the object store, records each photo's outcome exactly once, and runs the
//! side effects of completed batches (the `batch.completed` event and the callback).
//!
//! The worker only knows the ports (`ObjectStore`, `JobQueue`, `StateStore`): the binary
//! wires it to S3, RabbitMQ and Redis (`services`, its whole life in `binary::main_with`,
//! both behind the `services` feature), `tirage standalone` to the embedded adapters, both
//! through [`Worker::from_ports`].

//!
//! Inside, one module per step, none importing one that imports it back: `consumer` takes
//! deliveries, one loop per lane, and hands each to `job` (a resize: read, resize on the CPU
//! pool, store), `finalize` (a completed batch's event; its callback handed to its own work
//! item) or `callback` (one attempt per delivery, retried through the delay queue, bounded
//! per receiving host); `outcome` records what they
//! produced, hands completed batches off and settles the delivery (ack, retry later,
//! dead-letter). `cpu` is the pool the engine runs on (a photo suspected of crashing workers
//! runs alone); `reconcile` repairs what no job can (stalled batches, undone finalisations,
//! expired batches' objects), one worker at a time. All of them share a `context::Ctx`.

use std::net::SocketAddr;

use tirage_ports::Lane;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub mod admin;
#[cfg(feature = "services")]
pub mod binary;
mod callback;
mod callback_transport;
mod consumed;
mod consumer;
mod context;
mod cpu;
mod failure;
mod finalize;
mod gate;
mod host_slots;
mod http;
mod job;
pub mod metrics;
mod node;
mod outcome;
mod reconcile;
#[cfg(feature = "services")]
pub mod services;
pub mod settings;
pub mod signature;
pub mod ssrf;

pub use callback_transport::{CallbackAttempt, CallbackTransport, HttpCallbacks};
pub use context::{Ports, ResizeFn, Seams};
pub use cpu::{BlockingThreads, CpuResult, CpuWork, Offload, OffloadError};
pub use metrics::{CallbackOutcome, JobKind, JobOutcome, Metrics, Repair};
pub use node::Node;
pub use settings::{PhotoLimits, WorkerSettings};
pub use signature::{SIGNATURE_HEADER, sign, verify};

use tirage_core::codes::ProcessCode;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Settings(#[from] settings::InvalidSettings),
    #[error("cannot bind the HTTP port {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error("cannot connect to {service}: {message}")]
    Connect {
        service: &'static str,
        message: String,
    },
    #[error(transparent)]
    Config(#[from] tirage_runtime::config::ConfigError),
    #[error("the reconciler pass failed: {0}")]
    Reconcile(String),
}

impl WorkerError {
    pub fn code(&self) -> ProcessCode {
        match self {
            WorkerError::Settings(_) | WorkerError::Config(_) => ProcessCode::InvalidSettings,
            WorkerError::Bind { .. } => ProcessCode::BindFailed,
            WorkerError::Metrics(_) => ProcessCode::MetricsFailed,
            WorkerError::Http(_) => ProcessCode::HttpFailed,
            WorkerError::Connect { .. } => ProcessCode::DependencyUnavailable,
            WorkerError::Reconcile(_) => ProcessCode::ReconcileFailed,
        }
    }
}

/// What ends a worker's loops: a stop (and the process with them), or a drain (the
/// process stays until stopped).
struct Stops {
    stop: CancellationToken,
    drain: CancellationToken,
}

/// A worker bound to its HTTP port, not yet consuming.
pub struct Worker {
    settings: WorkerSettings,
    ports: Ports,
    seams: Seams,
    metrics: Metrics,
    listener: std::net::TcpListener,
    addr: SocketAddr,
    stop: CancellationToken,
    drain: CancellationToken,
}

impl Worker {
    /// Validates the settings and binds the HTTP port. Consuming starts with
    /// [`Worker::run_until_stopped`].
    pub async fn from_ports(settings: WorkerSettings, ports: Ports) -> Result<Worker, WorkerError> {
        settings.validate()?;
        let bind = format!("{}:{}", settings.host, settings.port);
        let listener = std::net::TcpListener::bind(&bind).map_err(|source| WorkerError::Bind {
            addr: bind.clone(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| WorkerError::Bind {
            addr: bind.clone(),
            source,
        })?;
        Ok(Worker {
            settings,
            ports,
            seams: Seams::production(),
            metrics: Metrics::new()?,
            listener,
            addr,
            stop: CancellationToken::new(),
            drain: CancellationToken::new(),
        })
    }

    /// Replaces the engine (tests inject panics or slow-downs; benchmarks a no-op).
    pub fn with_resizer(mut self, resizer: ResizeFn) -> Self {
        self.seams.resizer = resizer;
        self
    }

    fn node(self) -> Result<(Node, std::net::TcpListener, SocketAddr, Stops), WorkerError> {
        let node = Node::new(self.settings, self.ports, self.seams, self.metrics)?;
        let stops = Stops {
            stop: self.stop,
            drain: self.drain,
        };
        Ok((node, self.listener, self.addr, stops))
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Cancel it to stop the worker gracefully (what SIGTERM does in the binary).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Cancel it to drain the worker (what SIGUSR1 does in the binary, sent by `tirage-worker
    /// admin drain`): it takes no new job, settles what it took, answers 503 `draining` on
    /// `/readyz`, and keeps serving its port until stopped.
    pub fn drain_token(&self) -> CancellationToken {
        self.drain.clone()
    }

    /// One reconciler pass, then return, consuming nothing (`tirage-worker reconcile`):
    /// what a scheduled job runs where workers scale to zero, so stalled batches are still
    /// repaired and expired ones swept while no worker runs. `Ok(false)` when a running
    /// worker holds the reconciler's lease (it does the work).
    pub async fn reconcile_once(self) -> Result<bool, WorkerError> {
        let (node, ..) = self.node()?;
        node.reconcile_once().await
    }

    pub async fn run_until_stopped(self) -> Result<(), WorkerError> {
        let concurrency = self.settings.effective_concurrency();
        let (
            node,
            listener,
            addr,
            Stops {
                stop: stopped,
                drain,
            },
        ) = self.node()?;
        let server = http::server(node.ctx(), listener).map_err(WorkerError::Http)?;
        let http = server.handle();
        let server = tokio::spawn(server);
        info!(port = addr.port(), concurrency, "worker started");
        // The loops stop taking work on either a stop or a drain.
        let stop = node.drain_token();
        tokio::spawn({
            let (stopped, stop) = (stopped.clone(), stop.clone());
            async move {
                tokio::select! {
                    () = stopped.cancelled() => {}
                    () = drain.cancelled() => info!("drain requested: taking no new job"),
                }
                stop.cancel();
            }
        });
        let reconciler = tokio::spawn({
            let (node, stop) = (node.clone(), stop.clone());
            async move { node.reconcile(stop).await }
        });
        // One consume loop per lane: effects wait on third parties, resizes on the CPU, and
        // neither may hold the other's slots.
        let effects = tokio::spawn({
            let (node, stop) = (node.clone(), stop.clone());
            async move { node.consume(Lane::Effects, stop).await }
        });
        node.consume(Lane::Resize, stop).await;
        if let Err(e) = effects.await {
            warn!(error = %e, "the effects consumer failed");
        }
        if !stopped.is_cancelled() {
            info!("drained: every job taken is settled; serving /readyz (503) until stopped");
            stopped.cancelled().await;
        }
        http.stop(true).await;
        if let Err(e) = reconciler.await {
            warn!(error = %e, "the reconciler task failed");
        }
        match server.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(WorkerError::Http(e)),
            Err(e) => Err(WorkerError::Http(std::io::Error::other(e))),
        }
    }
}
