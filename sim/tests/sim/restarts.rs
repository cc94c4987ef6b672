//! State-store restarts, drawn from the seed (`restarts` stream): in about one faulty seed
//! in three, one or two, each at a drawn time within the first 90 s, the store down for
//! 0.5 to 5 s (every call refused meanwhile) and losing the writes of the last 0 to 1,000 ms
//! before it went down, as a `kill -9` of Redis with `appendfsync everysec` does
//! ([`Durable`]). None happens once the faults have healed.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::durable::Durable;
use crate::faults::FaultPlan;
use crate::ledger::Ledger;
use crate::rng::Stream;

#[derive(Debug, Clone, Copy)]
struct Restart {
    at: Duration,
    down: Duration,
    lose: Duration,
}

/// Starts the seed's restarts of `store`; the task ends after the last (or at the heal).
pub fn schedule(
    seed: u64,
    plan: &Arc<FaultPlan>,
    store: &Arc<Durable>,
    ledger: &Arc<Ledger>,
) -> JoinHandle<()> {
    let rng = Stream::derive(seed, "restarts");
    let restarting = rng.chance(0.35) && !plan.calm;
    let count = rng.usize_in(1, 2);
    let mut restarts: Vec<Restart> = (0..count)
        .map(|_| Restart {
            at: rng.millis(1_000, 90_000),
            down: rng.millis(500, 5_000),
            lose: rng.millis(0, 1_000),
        })
        .filter(|_| restarting)
        .collect();
    restarts.sort_by_key(|r| r.at);
    let (plan, store, ledger) = (plan.clone(), store.clone(), ledger.clone());
    let start = tokio::time::Instant::now();
    tokio::spawn(async move {
        for restart in restarts {
            tokio::time::sleep_until(start + restart.at).await;
            if plan.healed() {
                return;
            }
            let lost = store.crash(restart.lose);
            ledger.state_restarted(lost);
            ledger.count("state_restarts");
            tokio::time::sleep(restart.down).await;
            store.restart().await;
            ledger.note(
                "sim",
                "state_started",
                "",
                &format!("after {} ms down", restart.down.as_millis()),
            );
        }
    })
}
