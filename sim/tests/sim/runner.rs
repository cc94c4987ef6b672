//! Running seeds: one per thread at a time, each on its own current-thread runtime with
//! paused time, a watchdog for seeds that run too long in real time, a panic hook that tells
//! the product's panics from the engine's injected ones, and the logs' virtual time stamps.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, mpsc};
use std::time::{Duration, Instant};

use crate::engine::InjectedPanic;
use crate::world::{self, RunReport};

/// A seed running longer than this in real time is taken for stuck.
const WATCHDOG: Duration = Duration::from_secs(20);
/// Each seed's thread: the runtime polls every task on it.
pub const STACK: usize = 32 << 20;

thread_local! {
    /// Set by the panic hook when a panic other than the engine's injected ones happens on
    /// this thread.
    static PANICKED: Cell<bool> = const { Cell::new(false) };
    /// When the current run started, in virtual time (the logs' time stamps).
    static SIM_START: Cell<Option<tokio::time::Instant>> = const { Cell::new(None) };
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<InjectedPanic>().is_some() {
                return;
            }
            PANICKED.with(|p| p.set(true));
            default(info);
        }));
    });
}

/// Per simulator thread: the seed it runs and since when.
type Running = Arc<Mutex<Vec<Option<(u64, Instant)>>>>;

/// One seed's result.
pub struct SeedResult {
    pub report: RunReport,
    pub wall: Duration,
    pub panicked: bool,
}

impl SeedResult {
    pub fn failures(&self) -> Vec<String> {
        let mut failures = self.report.verdict.violations.clone();
        if self.panicked {
            failures.push("a task panicked (its message is printed above)".to_owned());
        }
        failures
    }
}

/// Runs one seed on this thread.
pub fn run_seed(seed: u64, trace: bool) -> SeedResult {
    install_panic_hook();
    PANICKED.with(|p| p.set(false));
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&runtime, async {
        SIM_START.with(|s| s.set(Some(tokio::time::Instant::now())));
        world::run(seed, trace).await
    });
    drop(local);
    drop(runtime);
    SIM_START.with(|s| s.set(None));
    SeedResult {
        report,
        wall: started.elapsed(),
        panicked: PANICKED.with(Cell::get),
    }
}

pub fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}

pub fn threads() -> usize {
    env_u64("TIRAGE_SIM_THREADS").map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |n| usize::try_from(n).unwrap_or(1).max(1),
    )
}

pub fn replay_line(seed: u64) -> String {
    format!(
        "replay: TIRAGE_SIM_SEED={seed} cargo test -p tirage-sim --test sim -- --exact replay --nocapture"
    )
}

/// Runs `seeds` on `threads` threads; a seed that panics the simulator itself, or runs past
/// the watchdog, is an `Err` with the reason.
pub fn run_many(seeds: &[u64], threads: usize) -> BTreeMap<u64, Result<SeedResult, String>> {
    let seeds: Arc<Vec<u64>> = Arc::new(seeds.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let running: Running = Arc::new(Mutex::new(vec![None; threads]));
    let (tx, rx) = mpsc::channel::<(u64, Result<SeedResult, String>)>();
    for t in 0..threads {
        let (seeds, next, running, tx) = (seeds.clone(), next.clone(), running.clone(), tx.clone());
        std::thread::Builder::new()
            .name(format!("sim-{t}"))
            .stack_size(STACK)
            .spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else {
                        return;
                    };
                    running.lock().unwrap()[t] = Some((seed, Instant::now()));
                    let result =
                        std::panic::catch_unwind(AssertUnwindSafe(|| run_seed(seed, false)))
                            .map_err(|_| {
                                "the simulator itself panicked (message above)".to_owned()
                            });
                    running.lock().unwrap()[t] = None;
                    if tx.send((seed, result)).is_err() {
                        return;
                    }
                }
            })
            .expect("a simulator thread");
    }
    drop(tx);
    let mut results = BTreeMap::new();
    let mut stuck = BTreeSet::new();
    while results.len() < seeds.len() {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok((seed, result)) => {
                if !stuck.contains(&seed) {
                    results.insert(seed, result);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                for (seed, since) in running.lock().unwrap().iter().flatten() {
                    if since.elapsed() > WATCHDOG && stuck.insert(*seed) {
                        results.insert(
                            *seed,
                            Err(format!(
                                "still running after {} s of real time (a livelock?); its thread is left behind",
                                WATCHDOG.as_secs()
                            )),
                        );
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    results
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// What `TIRAGE_SIM_LOG` asks for, with virtual time stamps.
pub struct VirtualTime;

impl tracing_subscriber::fmt::time::FormatTime for VirtualTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let ms = SIM_START
            .with(Cell::get)
            .map_or(0, |start| start.elapsed().as_millis());
        write!(w, "{ms:>9}ms")
    }
}
