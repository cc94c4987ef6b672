//! The `tirage-worker` binary's whole life, as a function of the engine it runs: loads the
//! configuration, installs the logs, connects, then consumes until SIGTERM (exit 0), or,
//! with the `reconcile` argument, runs one reconciler pass and exits (a scheduled job's
//! command where workers scale to zero; docs/DEPLOY.md).
//!
//! `worker/src/main.rs` calls [`main_with`] with [`tirage_engine::resize`]. Test binaries
//! outside this crate call it with an engine of their own (the end-to-end suite's
//! `tirage-worker-slowed`, whose every resize first waits): nothing test-only is built into
//! the release binary.

use std::process::ExitCode;

use tirage_runtime::shutdown;
use tirage_runtime::telemetry::{self, LogOutput};

use crate::services::Settings;
use crate::{ResizeFn, Worker};

/// Runs the worker process with `resizer` as its engine; returns the process's exit code:
/// 0 after a clean stop (or a reconciler pass), 2 for a bad command line or configuration,
/// 1 when the worker fails.
pub fn main_with(resizer: ResizeFn) -> ExitCode {
    let once = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("reconcile") => true,
        Some(other) => {
            eprintln!("tirage-worker: unknown command {other:?}; usage: tirage-worker [reconcile]");
            return ExitCode::from(2);
        }
    };
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tirage-worker: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = telemetry::init(&settings.log, LogOutput::Stderr) {
        eprintln!("tirage-worker: {e}");
        return ExitCode::from(2);
    }
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
    if once {
        return match runtime.block_on(async {
            Worker::build(settings)
                .await?
                .with_resizer(resizer)
                .reconcile_once()
                .await
        }) {
            Ok(held) => {
                tracing::info!(lease_held = held, "reconciler pass done");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(code = e.code().as_str(), error = %e, "reconciler pass failed");
                ExitCode::FAILURE
            }
        };
    }
    let result = runtime.block_on(async {
        let worker = Worker::build(settings).await?.with_resizer(resizer);
        let stop = worker.stop_token();
        tokio::spawn(async move {
            shutdown::signal().await;
            tracing::info!("stop signal received");
            stop.cancel();
        });
        worker.run_until_stopped().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(code = e.code().as_str(), error = %e, "worker failed");
            ExitCode::FAILURE
        }
    }
}
