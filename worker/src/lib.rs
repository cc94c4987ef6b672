//! Tirage's worker: consumes resize jobs, runs the engine on a bounded CPU pool, writes the
//! renditions to the object store, records each photo's outcome exactly once, and runs the
//! side effects of completed batches (the `batch.completed` event and the callback).
//!
//! The worker only knows the ports (`ObjectStore`, `JobQueue`, `StateStore`): the binary
//! wires it to S3, RabbitMQ and Redis, `tirage standalone` to the embedded adapters, both
//! through [`Worker::from_ports`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tirage_engine::{EngineError, Limits, Resized};
use tirage_shared::BatchOptions;
use tirage_shared::ports::{JobQueue, JobStream, ObjectStore, StateStore};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub mod configuration;
mod finalize;
mod http;
mod job;
pub mod metrics;
#[cfg(feature = "services")]
pub mod services;
pub mod settings;
pub mod ssrf;

pub use finalize::{EFFECT_CALLBACK, EFFECT_EVENT, SIGNATURE_HEADER, signature};
pub use metrics::Metrics;
pub use settings::WorkerSettings;

/// The three dependencies, already connected.
#[derive(Clone)]
pub struct Ports {
    pub state: Arc<dyn StateStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub queue: Arc<dyn JobQueue>,
}

/// The function that turns one photo into renditions: [`tirage_engine::resize`], unless a
/// test or benchmark substitutes another.
pub type ResizeFn =
    Arc<dyn Fn(&[u8], &BatchOptions, &Limits) -> Result<Resized, EngineError> + Send + Sync>;

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
    Config(#[from] ::config::ConfigError),
}

impl WorkerError {
    pub fn code(&self) -> &'static str {
        match self {
            WorkerError::Settings(_) | WorkerError::Config(_) => "invalid_settings",
            WorkerError::Bind { .. } => "bind_failed",
            WorkerError::Metrics(_) => "metrics_failed",
            WorkerError::Http(_) => "http_failed",
            WorkerError::Connect { .. } => "dependency_unavailable",
        }
    }
}

/// What every job task shares.
pub(crate) struct Ctx {
    pub settings: WorkerSettings,
    pub ports: Ports,
    pub resizer: ResizeFn,
    pub metrics: Metrics,
    /// Bounds the CPU work to `concurrency` engine runs at once.
    pub cpu: Arc<Semaphore>,
}

/// A worker bound to its HTTP port, not yet consuming.
pub struct Worker {
    settings: WorkerSettings,
    ports: Ports,
    resizer: ResizeFn,
    metrics: Metrics,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Worker {
    /// Validates the settings and binds the HTTP port. Consuming starts with
    /// [`Worker::run_until_stopped`].
    pub async fn from_ports(settings: WorkerSettings, ports: Ports) -> Result<Worker, WorkerError> {
        settings.validate()?;
        let bind = format!("{}:{}", settings.host, settings.port);
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|source| WorkerError::Bind {
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
            resizer: Arc::new(tirage_engine::resize),
            metrics: Metrics::new()?,
            listener,
            addr,
            stop: CancellationToken::new(),
        })
    }

    /// Replaces the engine (tests inject panics or slow-downs; benchmarks a no-op).
    pub fn with_resizer(mut self, resizer: ResizeFn) -> Self {
        self.resizer = resizer;
        self
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

    /// Consumes until the stop token is cancelled, then drains: in-flight jobs get the
    /// grace period, the rest go back to the queue. Returns once everything is settled.
    pub async fn run_until_stopped(self) -> Result<(), WorkerError> {
        let concurrency = self.settings.effective_concurrency();
        let ctx = Arc::new(Ctx {
            cpu: Arc::new(Semaphore::new(concurrency)),
            settings: self.settings,
            ports: self.ports,
            resizer: self.resizer,
            metrics: self.metrics,
        });
        let http_stop = CancellationToken::new();
        let server = axum::serve(self.listener, http::router(ctx.clone()))
            .with_graceful_shutdown(http_stop.clone().cancelled_owned());
        let server = tokio::spawn(async move { server.await });
        info!(port = self.addr.port(), concurrency, "worker started");
        consume(ctx, self.stop).await;
        http_stop.cancel();
        match server.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(WorkerError::Http(e)),
            Err(e) => Err(WorkerError::Http(std::io::Error::other(e))),
        }
    }
}

/// The consumer loop: consume, hand every delivery to its own task, consume again with
/// backoff whenever the stream ends or fails.
async fn consume(ctx: Arc<Ctx>, stop: CancellationToken) {
    let tracker = TaskTracker::new();
    let abandon = CancellationToken::new();
    let prefetch = ctx.settings.prefetch();
    let base = Duration::from_millis(ctx.settings.reconnect_base_ms);
    let cap = Duration::from_millis(ctx.settings.reconnect_cap_ms);
    let mut failures = 0u32;
    let mut current: Option<Box<dyn JobStream>> = None;
    loop {
        let Some(stream) = current.as_mut() else {
            let consumed = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                r = tokio::time::timeout(ctx.settings.io_timeout(), ctx.ports.queue.consume(prefetch)) => r,
            };
            match consumed {
                Ok(Ok(stream)) => {
                    info!(prefetch, "consuming");
                    current = Some(stream);
                    continue;
                }
                Ok(Err(e)) => warn!(error = %e, "cannot consume; retrying"),
                Err(_) => warn!("consume timed out; retrying"),
            }
            failures = failures.saturating_add(1);
            let delay = settings::backoff(failures, base, cap);
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
            continue;
        };
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            next = stream.next() => next,
        };
        match next {
            Some(Ok(delivery)) => {
                failures = 0;
                tracker.spawn(job::run(ctx.clone(), delivery, abandon.clone()));
                continue;
            }
            Some(Err(e)) => warn!(error = %e, "the job stream failed; consuming again"),
            None => warn!("the job stream ended; consuming again"),
        }
        current = None;
        ctx.metrics.consumer_restarts.inc();
        failures = failures.saturating_add(1);
        let delay = settings::backoff(failures, base, cap);
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    // No more deliveries are taken from here on. The stream itself stays open while
    // in-flight jobs drain, because closing it hands their messages back to the broker
    // (and the jobs' own settlements would then fail).
    tracker.close();
    let in_flight = tracker.len();
    info!(in_flight, "stopping: draining in-flight jobs");
    if tokio::time::timeout(ctx.settings.shutdown_grace(), tracker.wait())
        .await
        .is_err()
    {
        warn!(
            left = tracker.len(),
            "grace period over; requeueing the jobs still running"
        );
        abandon.cancel();
        tracker.wait().await;
    }
    drop(current);
    info!("stopped");
}
