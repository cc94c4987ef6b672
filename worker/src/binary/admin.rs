//! `tirage-worker admin …`: an operator's commands against the deployment the configuration
//! names (run in a worker's container: `kubectl exec`, `podman exec`, or as a Job; see
//! docs/DEPLOY.md). Reports go to stdout as JSON; nothing binds the worker's port, so they
//! run beside the worker process itself.
//!
//! - `batch BATCH_ID`: the batch, every photo (state, failure code, crashed runs), its effects.
//! - `dead-letters [--batch BATCH_ID] [--limit N] [--replay]`: the dead letters (of one batch),
//!   read in place; with `--replay`, put back on their lanes as first attempts.
//! - `reconcile`: one reconciler pass now (under the lease).
//! - `drain [PID]`: tells the worker process `PID` (1, the container's, by default) to take no
//!   new job; it settles what it took and answers 503 `draining` until stopped.

use std::process::ExitCode;

use serde::Serialize;
use tirage_runtime::connect;
use uuid::Uuid;

use crate::context::{Ports, Seams};
use crate::metrics::Metrics;
use crate::services::Settings;
use crate::{Node, ResizeFn, admin};

pub(super) const USAGE: &str = "usage: tirage-worker admin batch BATCH_ID \
    | dead-letters [--batch BATCH_ID] [--limit N] [--replay] | reconcile | drain [PID]";

/// Dead letters read at most, unless `--limit` says otherwise.
const DEFAULT_LIMIT: usize = 1000;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admin {
    Batch(Uuid),
    DeadLetters {
        batch: Option<Uuid>,
        limit: usize,
        replay: bool,
    },
    Reconcile,
    Drain {
        pid: i32,
    },
}

/// The command after `admin`.
pub(super) fn parse(args: &[String]) -> Result<Admin, String> {
    let id = |s: &str| Uuid::parse_str(s).map_err(|e| format!("{s:?} is not a batch id: {e}"));
    match args {
        [cmd, batch] if cmd == "batch" => Ok(Admin::Batch(id(batch)?)),
        [cmd, rest @ ..] if cmd == "dead-letters" => {
            let (mut batch, mut limit, mut replay) = (None, DEFAULT_LIMIT, false);
            let mut rest = rest.iter();
            while let Some(flag) = rest.next() {
                match flag.as_str() {
                    "--replay" => replay = true,
                    "--batch" => {
                        let value = rest.next().ok_or("--batch needs a batch id")?;
                        batch = Some(id(value)?);
                    }
                    "--limit" => {
                        let value = rest.next().ok_or("--limit needs a number")?;
                        limit =
                            value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                                format!("--limit {value:?} is not a positive number")
                            })?;
                    }
                    other => return Err(format!("unknown option {other:?}")),
                }
            }
            Ok(Admin::DeadLetters {
                batch,
                limit,
                replay,
            })
        }
        [cmd] if cmd == "reconcile" => Ok(Admin::Reconcile),
        [cmd] if cmd == "drain" => Ok(Admin::Drain { pid: 1 }),
        [cmd, pid] if cmd == "drain" => pid
            .parse()
            .ok()
            .filter(|&p: &i32| p > 0)
            .map(|pid| Admin::Drain { pid })
            .ok_or_else(|| format!("{pid:?} is not a process id")),
        _ => Err("unknown admin command".into()),
    }
}

/// Runs `command`; 0 when done, 1 when it failed (said on stderr).
pub(super) fn run(command: Admin, settings: Settings, resizer: ResizeFn) -> ExitCode {
    if let Admin::Drain { pid } = command {
        return drain(pid);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return failed(&format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async {
        let ports = match connect(&settings.services).await {
            Ok(ports) => ports,
            Err(e) => {
                return failed(&format!(
                    "cannot connect to {}: {}",
                    e.dependency, e.message
                ));
            }
        };
        match command {
            Admin::Batch(batch_id) => match admin::batch_report(&ports, batch_id).await {
                Ok(Some(report)) => print(&report),
                Ok(None) => failed(&format!("no batch {batch_id}")),
                Err(e) => failed(&e.to_string()),
            },
            Admin::DeadLetters {
                batch,
                limit,
                replay: false,
            } => match admin::dead_letters(&ports, batch, limit).await {
                Ok(letters) => print(&letters),
                Err(e) => failed(&e.to_string()),
            },
            Admin::DeadLetters {
                batch,
                limit,
                replay: true,
            } => match admin::replay_dead_letters(&ports, batch, limit).await {
                Ok(replayed) => print(&replayed),
                Err(e) => failed(&e.to_string()),
            },
            Admin::Reconcile => reconcile(settings, ports, resizer).await,
            Admin::Drain { .. } => ExitCode::SUCCESS,
        }
    })
}

/// One pass, by a node that binds nothing (the worker beside it keeps its port).
async fn reconcile(settings: Settings, ports: Ports, resizer: ResizeFn) -> ExitCode {
    let worker = settings.worker.with_limits(settings.limits);
    let seams = Seams {
        resizer,
        ..Seams::production()
    };
    let node = Metrics::new()
        .map_err(|e| e.to_string())
        .and_then(|metrics| Node::new(worker, ports, seams, metrics).map_err(|e| e.to_string()));
    match node {
        Ok(node) => match node.reconcile_once().await {
            Ok(held) => print(
                &serde_json::json!({"pass": if held { "done" } else { "another holder has the lease" }}),
            ),
            Err(e) => failed(&e.to_string()),
        },
        Err(e) => failed(&e),
    }
}

fn drain(pid: i32) -> ExitCode {
    let Some(target) = rustix::process::Pid::from_raw(pid) else {
        return failed(&format!("{pid} is not a process id"));
    };
    match rustix::process::kill_process(target, rustix::process::Signal::USR1) {
        Ok(()) => print(&serde_json::json!({"drain": "requested", "pid": pid})),
        Err(e) => failed(&format!("cannot signal process {pid}: {e}")),
    }
}

fn print(value: &impl Serialize) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => failed(&format!("cannot write the report: {e}")),
    }
}

fn failed(message: &str) -> ExitCode {
    eprintln!("tirage-worker admin: {message}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn commands_parse_with_their_options() {
        let id = Uuid::new_v4();
        assert_eq!(parse(&args(&format!("batch {id}"))), Ok(Admin::Batch(id)));
        assert_eq!(
            parse(&args(&format!(
                "dead-letters --replay --batch {id} --limit 5"
            ))),
            Ok(Admin::DeadLetters {
                batch: Some(id),
                limit: 5,
                replay: true
            })
        );
        assert_eq!(
            parse(&args("dead-letters")),
            Ok(Admin::DeadLetters {
                batch: None,
                limit: DEFAULT_LIMIT,
                replay: false
            })
        );
        assert_eq!(parse(&args("reconcile")), Ok(Admin::Reconcile));
        assert_eq!(parse(&args("drain")), Ok(Admin::Drain { pid: 1 }));
        assert_eq!(parse(&args("drain 42")), Ok(Admin::Drain { pid: 42 }));
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        for line in [
            "",
            "batch",
            "batch not-a-uuid",
            "dead-letters --limit 0",
            "dead-letters --batch",
            "dead-letters --frobnicate",
            "drain -3",
            "launch",
        ] {
            assert!(parse(&args(line)).is_err(), "{line:?} parsed");
        }
    }
}
