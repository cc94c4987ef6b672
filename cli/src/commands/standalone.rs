//! `tirage standalone [--port 8080] [--data DIR]`: the whole service in one process, on the
//! embedded adapters and with no external service — the v1 API (the `tirage-api` app, as
//! is) and the resize worker (the `tirage-worker` run loop) sharing a file-system object
//! store under `--data`, an in-process job queue and in-memory state. Presigned upload URLs
//! point back at this process, which verifies and serves them.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use tirage_api::{Application, Settings};
use tirage_core::codes::ProcessCode;
use tirage_embedded::{FsObjectStore, FsSettings, InProcessQueue, MemoryStateStore};
use tirage_ports::ObjectStore;
use tirage_runtime::telemetry::{
    self, LogFormat, LogOutput, LogSettings, Telemetry, TelemetryError,
};
use tirage_runtime::{PortNames, Ports, config, shutdown};
use tirage_worker::{Worker, WorkerSettings};

#[derive(Debug, Args)]
pub struct StandaloneArgs {
    /// Port to listen on; 0 picks a free one (the URL printed at start names it).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Interface to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Directory holding originals and renditions (created when missing).
    #[arg(long, default_value = ".tirage")]
    pub data: PathBuf,
    /// Base URL clients reach this service at, used in presigned URLs (default: the
    /// listening address). Set it when a proxy or another host name is in front.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Resize jobs run at once; default one per core.
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
enum StandaloneError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot use the data directory {dir}: {message}")]
    Data { dir: String, message: String },
    #[error("cannot start the API: {0}")]
    Api(#[from] tirage_api::StartupError),
    #[error("cannot start the worker: {0}")]
    Worker(#[from] tirage_worker::WorkerError),
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl StandaloneError {
    fn code(&self) -> ProcessCode {
        match self {
            StandaloneError::Config(_) => ProcessCode::InvalidSettings,
            StandaloneError::Bind { .. } => ProcessCode::BindFailed,
            StandaloneError::Data { .. } => ProcessCode::DataDirUnusable,
            StandaloneError::Api(_) => ProcessCode::ApiStartFailed,
            StandaloneError::Worker(_) => ProcessCode::WorkerFailed,
            StandaloneError::Serve(_) => ProcessCode::HttpFailed,
            StandaloneError::Runtime(_) => ProcessCode::RuntimeFailed,
        }
    }
}

pub fn run(args: StandaloneArgs) -> ExitCode {
    let telemetry = match init_telemetry() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", ProcessCode::InvalidSettings);
            return ExitCode::from(2);
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StandaloneError::Runtime)
        .and_then(|rt| rt.block_on(serve(args)));
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", e.code());
            match e {
                StandaloneError::Config(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// Human-readable logs on stderr (stdout carries the URL), quiet unless `RUST_LOG` asks;
/// traces when `OTEL_*` asks (one process, so one service: `tirage-standalone`).
fn init_telemetry() -> Result<Option<Telemetry>, TelemetryError> {
    let quiet = LogSettings {
        level: "warn".into(),
        format: LogFormat::Pretty,
    };
    match telemetry::init(&quiet, LogOutput::Stderr, "tirage-standalone") {
        Ok(t) => Ok(Some(t)),
        // A second install (tests calling in-process) keeps the first one.
        Err(TelemetryError::Install(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The URL clients use for an address we listen on: a wildcard address is reached through
/// the loopback interface.
fn public_url(host: &str, port: u16) -> String {
    let host = match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" | "[::]" => "[::1]",
        h if h.contains(':') && !h.starts_with('[') => return format!("http://[{h}]:{port}"),
        h => h,
    };
    format!("http://{host}:{port}")
}

fn random_secret() -> String {
    // Two v4 UUIDs: 244 random bits from the OS generator. Presigned URLs and callback
    // signatures need not outlive the process, whose state is in memory anyway.
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

async fn serve(args: StandaloneArgs) -> Result<(), StandaloneError> {
    let mut settings = Settings::load().map_err(|e| StandaloneError::Config(e.to_string()))?;
    settings.api.host = args.host.clone();
    settings.api.port = args.port;
    // `[worker]`, and the byte limit of `[limits]` that the API enforces on upload.
    let mut worker_settings = WorkerSettings::from_layers(&config::Layers::process())
        .map_err(|e| StandaloneError::Config(e.to_string()))?;
    // The worker's health port stays private to this machine and never collides.
    worker_settings.host = "127.0.0.1".into();
    worker_settings.port = 0;
    if let Some(jobs) = args.jobs {
        worker_settings.concurrency = jobs;
    }
    // The repository ships no callback secret; without one of the user's, this run signs
    // callbacks with a key of its own (no one else knows it, so nothing can forge them).
    if secrecy::ExposeSecret::expose_secret(&worker_settings.callback_secret).is_empty() {
        worker_settings.callback_secret = random_secret().into();
        tracing::info!(
            "callbacks are signed with a random per-run key; set \
             TIRAGE__WORKER__CALLBACK_SECRET to verify them"
        );
    }

    let addr = if args.host.contains(':') && !args.host.starts_with('[') {
        format!("[{}]:{}", args.host, args.port)
    } else {
        format!("{}:{}", args.host, args.port)
    };
    // Bound here, before the store exists, because the store's presigned URLs carry the port.
    let listener = TcpListener::bind(&addr).map_err(|source| StandaloneError::Bind {
        addr: addr.clone(),
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| StandaloneError::Bind { addr, source })?
        .port();
    let listen_url = public_url(&args.host, port);
    let base_url = args
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| listen_url.clone());

    let data_error = |message: String| StandaloneError::Data {
        dir: args.data.display().to_string(),
        message,
    };
    let objects = Arc::new(
        FsObjectStore::connect(&FsSettings {
            root: args.data.clone(),
            public_base_url: base_url.clone(),
            presign_secret: random_secret().into(),
        })
        .await
        .map_err(|e| data_error(e.to_string()))?,
    );
    // Batches live in memory, so those of a previous run are unreachable: their objects
    // would only fill the disk.
    let removed = objects
        .delete_prefix("batches/")
        .await
        .map_err(|e| data_error(e.to_string()))?;
    if removed > 0 {
        tracing::info!(removed, "removed the objects of a previous run");
    }

    let state = Arc::new(MemoryStateStore::new());
    let queue = Arc::new(InProcessQueue::new());
    let ports = Ports {
        state,
        objects: objects.clone(),
        queue,
        names: PortNames::embedded(),
    };
    let app = Application::build_embedded(listener, settings, ports.clone(), objects)?;
    let worker = Worker::from_ports(worker_settings, ports).await?;
    let worker_port = worker.port();
    let stop_worker = worker.stop_token();
    let worker_task = tokio::spawn(worker.run_until_stopped());

    // The API stops itself on the signal too; the worker drains at the same time.
    let signal_stop = stop_worker.clone();
    tokio::spawn(async move {
        shutdown::signal().await;
        eprintln!("stopping: finishing requests and jobs in flight");
        signal_stop.cancel();
    });

    println!("Tirage standalone is serving the v1 API at {base_url}");
    if base_url != listen_url {
        println!("  listening on {listen_url}");
    }
    println!("  data: {}", args.data.display());
    println!("  worker health and metrics: http://127.0.0.1:{worker_port}/metrics");
    println!("  try:  tirage upload PHOTOS... --server {base_url} --out renditions");
    // Last, alone on its line, for scripts: the address this process listens on.
    println!("{listen_url}");

    let served = app.run_until_stopped().await;
    // Stopped by a signal or by failing: either way the worker follows.
    stop_worker.cancel();
    let worked = worker_task.await;
    served.map_err(StandaloneError::Serve)?;
    match worked {
        Ok(result) => result?,
        Err(e) => return Err(StandaloneError::Serve(std::io::Error::other(e))),
    }
    eprintln!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_reached_through_loopback() {
        assert_eq!(public_url("0.0.0.0", 8080), "http://127.0.0.1:8080");
        assert_eq!(public_url("127.0.0.1", 1), "http://127.0.0.1:1");
        assert_eq!(public_url("::", 9), "http://[::1]:9");
        assert_eq!(public_url("::1", 9), "http://[::1]:9");
        assert_eq!(public_url("photos.local", 80), "http://photos.local:80");
    }
}
