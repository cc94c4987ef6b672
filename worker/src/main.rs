//! `tirage-worker`: loads the configuration, connects, consumes until SIGTERM, exits 0.
//! `tirage-worker reconcile`: one reconciler pass, then exits (a scheduled job's command
//! where workers scale to zero; docs/DEPLOY.md).

use std::process::ExitCode;

use tirage_runtime::shutdown;
use tirage_runtime::telemetry::{self, LogOutput};
use tirage_worker::Worker;
use tirage_worker::services::Settings;

fn main() -> ExitCode {
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
        return match runtime
            .block_on(async { Worker::build(settings).await?.reconcile_once().await })
        {
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
        let worker = Worker::build(settings).await?;
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
