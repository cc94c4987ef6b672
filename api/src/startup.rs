//! Building and running the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpServer, web};
use tirage_shared::adapters::FsObjectStore;
use tirage_shared::ports::{JobQueue, ObjectStore, StateStore};

use crate::auth::digest;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::routes;
use crate::settings::Settings;
use crate::telemetry;

/// The three ports the API runs on. Built from settings by [`Application::build`] (Redis,
/// RabbitMQ, S3), or handed in ready-made (embedded adapters, tests) to
/// [`Application::build_with`].
#[derive(Clone)]
pub struct Dependencies {
    pub state: Arc<dyn StateStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub queue: Arc<dyn JobQueue>,
    /// How `/readyz` names each dependency.
    pub names: DependencyNames,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyNames {
    pub state: String,
    pub objects: String,
    pub queue: String,
}

impl DependencyNames {
    /// The production names, which are what operators look for in `/readyz`.
    pub fn production() -> Self {
        DependencyNames {
            state: "redis".into(),
            objects: "s3".into(),
            queue: "rabbitmq".into(),
        }
    }

    pub fn embedded() -> Self {
        DependencyNames {
            state: "memory_state".into(),
            objects: "fs_objects".into(),
            queue: "inprocess_queue".into(),
        }
    }
}

/// Where each HTTP worker gets its [`Dependencies`].
#[derive(Clone)]
pub enum Wiring {
    /// Built once and shared by every worker: adapters with no tie to a runtime (the
    /// embedded ones), and tests.
    Shared(Dependencies),
    /// Built by each worker, on its own thread, when it starts: production clients whose
    /// connections belong to the runtime that opened them ([`crate::connect::production`]).
    PerWorker(Arc<dyn Fn() -> Dependencies + Send + Sync>),
}

impl Wiring {
    fn dependencies(&self) -> Dependencies {
        match self {
            Wiring::Shared(deps) => deps.clone(),
            Wiring::PerWorker(build) => build(),
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
    #[error("cannot connect to {dependency}: {message}")]
    Connect {
        dependency: &'static str,
        message: String,
    },
}

/// What the handlers of one HTTP worker share, as `web::Data`.
pub struct AppState {
    pub deps: Dependencies,
    pub settings: Settings,
    pub metrics: Metrics,
    /// SHA-256 of each configured API key (see [`crate::auth::digests_equal`]).
    pub api_key_digests: Vec<[u8; 32]>,
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
        let wiring = crate::connect::production(&settings).await?;
        Self::bind(settings, wiring)
    }

    /// Binds the listener on already-built dependencies; the server runs once
    /// [`Application::run_until_stopped`] is awaited.
    pub fn build_with(settings: Settings, deps: Dependencies) -> Result<Self, StartupError> {
        Self::bind(settings, Wiring::Shared(deps))
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
    /// behind `deps.objects`.
    pub fn build_embedded(
        listener: TcpListener,
        settings: Settings,
        deps: Dependencies,
        objects: Arc<FsObjectStore>,
    ) -> Result<Self, StartupError> {
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: "listener".into(),
                source,
            })?
            .port();
        let server = run(listener, settings, Wiring::Shared(deps), Some(objects))?;
        Ok(Application { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from elsewhere (standalone mode, tests).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped. SIGTERM/SIGINT stop accepting, give in-flight requests
    /// `api.shutdown_timeout_secs`, then return `Ok`.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
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
    // actix-web calls this once per worker, on the worker's own thread.
    let mut server = HttpServer::new(move || {
        let state = web::Data::new(AppState {
            deps: wiring.dependencies(),
            settings: settings.clone(),
            metrics: metrics.clone(),
            api_key_digests: api_key_digests.clone(),
        });
        App::new()
            .app_data(state)
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|err, _| ApiError::MalformedQuery(err.to_string()).into()),
            )
            // A path segment that does not parse (a batch id that is no UUID) names
            // nothing that exists.
            .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into()))
            .wrap(from_fn(telemetry::observe))
            .configure(routes::configure)
            .configure(|cfg| routes::objects::configure(cfg, presigned.clone()))
            .default_service(web::to(not_found))
    })
    .shutdown_timeout(shutdown);
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
    tracing::debug!(path = req.path(), "no route");
    Err(ApiError::NotFound)
}
