//! Building and running the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpServer, web};
use tirage_embedded::FsObjectStore;
use tirage_ports::SystemClock;
use tirage_runtime::shutdown;
use tirage_runtime::{ConnectError, ServiceSettings, connect};

use crate::auth::digest;
use crate::backpressure::UploadSlots;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::progress::ProgressHub;
use crate::routes;
use crate::settings::Settings;
use crate::signed_urls::RenditionUrls;
use crate::state::AppState;
use crate::{openapi, telemetry};

/// The ports the API runs on: built from settings by [`Application::build`] (Redis,
/// RabbitMQ, S3), or handed in ready-made (embedded adapters, tests) to
/// [`Application::build_with`].
pub use tirage_runtime::{PortNames, Ports};

/// Where each HTTP worker gets its ports.
#[derive(Clone)]
pub enum Wiring {
    /// Built once and shared by every worker: adapters with no tie to a runtime (the
    /// embedded ones), and tests.
    Shared(Ports),
    /// Production: each worker, on its own thread when it starts, opens Redis and S3
    /// clients of its own ([`Ports::with_own_clients`]) and shares the queue.
    /// actix-web gives every worker its own runtime and stops them one by one on shutdown;
    /// a connection shared across workers would die with the worker that opened it while
    /// another still uses it.
    PerWorker {
        shared: Ports,
        services: Box<ServiceSettings>,
    },
}

impl Wiring {
    fn ports(&self) -> Ports {
        match self {
            Wiring::Shared(ports) => ports.clone(),
            Wiring::PerWorker { shared, services } => shared.with_own_clients(services),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot start the progress hub: {0}")]
    ProgressHub(std::io::Error),
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Builds the production adapters named in the settings (Redis, RabbitMQ, S3), then
    /// binds. A dependency that is down at start-up is not an error: `/readyz` reports it,
    /// requests that need it answer 503, and they succeed again once it is back.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let shared = connect(&settings.services).await?;
        let wiring = Wiring::PerWorker {
            shared,
            services: Box::new(settings.services.clone()),
        };
        Self::bind(settings, wiring)
    }

    /// Binds the listener on already-built dependencies; the server runs once
    /// [`Application::run_until_stopped`] is awaited.
    pub fn build_with(settings: Settings, ports: Ports) -> Result<Self, StartupError> {
        Self::bind(settings, Wiring::Shared(ports))
    }

    fn bind(settings: Settings, wiring: Wiring) -> Result<Self, StartupError> {
        let addr = format!("{}:{}", settings.api.host, settings.api.port);
        let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?
            .port();
        let server = run(listener, settings, wiring, None)?;
        Ok(Application { port, server })
    }

    /// Serves on a listener the caller bound, with the file-system store's presigned URLs
    /// (`/v1/objects/{key}`) answered by this server: `tirage standalone`, whose store must
    /// know the port for its URLs before the server exists. `objects` must be the store
    /// behind `ports.objects`.
    pub fn build_embedded(
        listener: TcpListener,
        settings: Settings,
        ports: Ports,
        objects: Arc<FsObjectStore>,
    ) -> Result<Self, StartupError> {
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: "listener".into(),
                source,
            })?
            .port();
        let server = run(listener, settings, Wiring::Shared(ports), Some(objects))?;
        Ok(Application { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from elsewhere (standalone mode, tests).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped: the process's stop signal ([`shutdown::signal`]) or a
    /// [`ServerHandle::stop`] stops accepting, gives in-flight requests
    /// `api.shutdown_timeout_secs`, then returns `Ok`.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let on_signal = tokio::spawn(async move {
            shutdown::signal().await;
            tracing::info!("stop signal received; draining requests");
            handle.stop(true).await;
        });
        let served = self.server.await;
        on_signal.abort();
        served
    }
}

fn run(
    listener: TcpListener,
    settings: Settings,
    wiring: Wiring,
    presigned: Option<Arc<FsObjectStore>>,
) -> Result<Server, StartupError> {
    let metrics = Metrics::new()?;
    let api_key_digests: Vec<[u8; 32]> = settings
        .sessions
        .api_keys
        .iter()
        .map(|k| digest(secrecy::ExposeSecret::expose_secret(k).as_bytes()))
        .collect();
    let workers = settings.api.workers;
    let shutdown = settings.api.shutdown_timeout_secs;
    let keep_alive = std::time::Duration::from_secs(settings.api.keep_alive_secs);
    // Per process, not per HTTP worker: the bound and the subscription are the replica's.
    let uploads = UploadSlots::new(
        settings.api.max_concurrent_uploads,
        settings.api.uploads_per_session,
        settings.api.busy_retry_after_secs,
    );
    let hub_wiring = wiring.clone();
    let progress =
        ProgressHub::start(move || hub_wiring.ports().state).map_err(StartupError::ProgressHub)?;
    // actix-web calls this once per worker, on the worker's own thread.
    let mut server = HttpServer::new(move || {
        let state = web::Data::new(AppState {
            ports: wiring.ports(),
            settings: settings.clone(),
            metrics: metrics.clone(),
            api_key_digests: api_key_digests.clone(),
            uploads: uploads.clone(),
            progress: progress.clone(),
            rendition_urls: settings
                .api
                .signed_rendition_urls
                .then(|| RenditionUrls::new(settings.api.rendition_url_key.clone())),
            clock: Arc::new(SystemClock),
        });
        App::new()
            .app_data(state)
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|err, _| ApiError::MalformedQuery(err.to_string()).into()),
            )
            // A path segment that does not parse (a batch id that is no UUID) names
            // nothing that exists, unless the path is another route's (`GET …/complete`).
            .app_data(web::PathConfig::default().error_handler(|_, req| unrouted(req).into()))
            .wrap(from_fn(telemetry::observe))
            .configure(routes::configure)
            .service(openapi::openapi_json)
            .configure(|cfg| routes::objects::configure(cfg, presigned.clone()))
            .default_service(web::to(not_found))
    })
    .shutdown_timeout(shutdown)
    .keep_alive(keep_alive)
    // One stop signal for every process: `run_until_stopped` listens for it.
    .disable_signals();
    if workers > 0 {
        server = server.workers(workers);
    }
    let server = server
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: "listener".into(),
            source,
        })?;
    Ok(server.run())
}

async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    tracing::debug!(path = req.path(), method = %req.method(), "no route");
    Err(unrouted(&req))
}

/// No route took the request: a documented path asked with another method is `405` with
/// the methods it has in `Allow`; anything else names nothing (`404`).
fn unrouted(req: &HttpRequest) -> ApiError {
    match openapi::allowed_methods(req.path()) {
        Some(allow) if !allow.split(", ").any(|m| m == req.method().as_str()) => {
            ApiError::MethodNotAllowed { allow }
        }
        _ => ApiError::NotFound,
    }
}
