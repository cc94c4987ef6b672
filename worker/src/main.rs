//! `tirage-worker`: loads the configuration, connects, consumes until SIGTERM, exits 0.

use std::process::ExitCode;

use tirage_worker::Worker;
use tirage_worker::services::{LogSettings, Settings};
use tracing_subscriber::EnvFilter;

fn init_logs(log: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if log.format == "pretty" {
        builder.init();
    } else {
        // JSON with the current span (the job's request id, batch and photo) on every line.
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    }
}

fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tirage-worker: {e}");
            return ExitCode::from(2);
        }
    };
    init_logs(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let worker = Worker::build(settings).await?;
        let stop = worker.stop_token();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stop signal received");
            stop.cancel();
        });
        worker.run_until_stopped().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(code = e.code(), error = %e, "worker failed");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM (what orchestrators send) or Ctrl-C.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
