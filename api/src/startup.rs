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

/// What every handler shares. Cloned into each HTTP worker as `web::Data`.
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
    /// Connects the production adapters named in the settings (Redis, RabbitMQ, S3), then
    /// binds. A dependency that is down at start-up is an error: the orchestrator restarts us.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let deps = crate::connect::production(&settings).await?;
        Self::build_with(settings, deps)
    }

    /// Binds the listener on already-built dependencies; the server runs once
    /// [`Application::run_until_stopped`] is awaited.
    pub fn build_with(settings: Settings, deps: Dependencies) -> Result<Self, StartupError> {
        let addr = format!("{}:{}", settings.api.host, settings.api.port);
        let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?
            .port();
        let server = run(listener, settings, deps, None)?;
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
        let server = run(listener, settings, deps, Some(objects))?;
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
    deps: Dependencies,
    presigned: Option<Arc<FsObjectStore>>,
) -> Result<Server, StartupError> {
    let metrics = Metrics::new()?;
    let api_key_digests = settings
        .sessions
        .api_keys
        .iter()
        .map(|k| digest(secrecy::ExposeSecret::expose_secret(k).as_bytes()))
        .collect();
    let workers = settings.api.workers;
    let shutdown = settings.api.shutdown_timeout_secs;
    let state = web::Data::new(AppState {
        deps,
        settings,
        metrics,
        api_key_digests,
    });
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
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
