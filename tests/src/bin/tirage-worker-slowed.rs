//! `tirage-worker-slowed`: the `tirage-worker` binary (the same settings, commands and exit
//! codes, through `tirage_worker::binary::main_with`) whose every resize first sleeps
//! `TIRAGE_TEST_JOB_DELAY_MS` milliseconds on the CPU pool, then runs the real engine. The
//! end-to-end suites run it in place of `tirage-worker` (deploy/local/cluster.sh's
//! `TIRAGE_WORKER_BIN`) so that a worker killed, or a service stopped, while a batch runs
//! surely lands in the middle of jobs. A test binary only: the release worker has no such
//! delay, nor any setting for one.
//!
//! `TIRAGE_TEST_JOB_DELAY_MS` is required (0 is allowed); without it, or when it is not a
//! number of milliseconds, the binary exits 2 at once, naming it.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tirage_core::BatchOptions;
use tirage_engine::Limits;
use tirage_worker::ResizeFn;

const DELAY_VAR: &str = "TIRAGE_TEST_JOB_DELAY_MS";

fn main() -> ExitCode {
    let delay = match std::env::var(DELAY_VAR) {
        Ok(value) => match value.trim().parse::<u64>() {
            Ok(ms) => Duration::from_millis(ms),
            Err(_) => {
                eprintln!(
                    "tirage-worker-slowed: {DELAY_VAR}={value:?} is not a number of milliseconds"
                );
                return ExitCode::from(2);
            }
        },
        Err(_) => {
            eprintln!(
                "tirage-worker-slowed: {DELAY_VAR} is required: how many milliseconds every \
                 resize sleeps first (0 for none)"
            );
            return ExitCode::from(2);
        }
    };
    // The worker runs the engine on its CPU pool's blocking threads: the sleep holds a slot
    // as a long resize would.
    let resizer: ResizeFn = Arc::new(
        move |input: &[u8], options: &BatchOptions, limits: &Limits| {
            std::thread::sleep(delay);
            tirage_engine::resize(input, options, limits)
        },
    );
    tirage_worker::binary::main_with(resizer)
}
