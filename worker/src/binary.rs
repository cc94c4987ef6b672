//! The `tirage-worker` binary's whole life, as a function of the engine it runs: loads the
//! configuration, installs the logs, connects, then consumes until SIGTERM (exit 0; SIGUSR1
//! drains it first), or, with the `reconcile` argument, runs one reconciler pass and exits
//! (a scheduled job's command where workers scale to zero; docs/DEPLOY.md), or runs an
//! operator's `admin` command ([`admin`]).
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

mod admin;

/// Runs the worker process with `resizer` as its engine; returns the process's exit code:
/// 0 after a clean stop (or a reconciler pass), 2 for a bad command line or configuration,
/// 1 when the worker fails.
pub fn main_with(resizer: ResizeFn) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (once, admin) = match args.first().map(String::as_str) {
        None => (false, None),
        Some("reconcile") => (true, None),
        Some("admin") => match admin::parse(&args[1..]) {
            Ok(command) => (false, Some(command)),
            Err(e) => {
                eprintln!("tirage-worker admin: {e}; {}", admin::USAGE);
                return ExitCode::from(2);
            }
        },
        Some(other) => {
            eprintln!(
                "tirage-worker: unknown command {other:?}; usage: tirage-worker [reconcile | admin …]"
            );
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
    if let Some(command) = admin {
        // An operator's command: no logs, its report alone on stdout.
        return admin::run(command, settings, resizer);
    }
    let telemetry = match telemetry::init(&settings.log, LogOutput::Stderr, "tirage-worker") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tirage-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let code = serve(settings, resizer, once);
    telemetry.shutdown();
    code
}

/// Runs the worker (or one reconciler pass, `once`) until stopped.
fn serve(settings: Settings, resizer: ResizeFn, once: bool) -> ExitCode {
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
        let drain = worker.drain_token();
        tokio::spawn(async move {
            shutdown::drain_signal().await;
            tracing::info!("drain signal received");
            drain.cancel();
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
