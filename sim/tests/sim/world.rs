//! One run: the shared adapters (one `MemoryStateStore` behind its journal, [`Durable`], one
//! `InProcessQueue`, one [`SimObjects`]) on the run's virtual clock, 1 to 4 worker nodes
//! each consuming both lanes and running the reconciler, 1 or 2 API replicas, each process
//! on its own (perhaps skewed) clock, the clients, all over fault-injecting ports; then,
//! once the run is quiet (or its virtual-time horizon is reached), the stop and the checker.
//!
//! Quiet means: every client is done; no killed node or replica and no state-store restart
//! is still to come; every batch a client closed is completed and its event marked done
//! (unless a restart lost its creation, close or delete: then only its photos are waited
//! for); a deleted batch is past its re-sweep with nothing left; an expired one is swept; in
//! a seed whose batches expire, every batch has; nothing waits on either lane (ready or
//! delayed); no node has a job in flight. The faults heal once the clients are done and the
//! drawn fault window is over (or at half the horizon), so that a run ends in a state the
//! invariants can judge.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use secrecy::SecretString;
use tirage_core::codes::Effect;
use tirage_core::keys;
use tirage_core::model::BatchState;
use tirage_embedded::InProcessQueue;
use tirage_ports::{Clock, JobQueue, Lane, StateStore};
use tirage_runtime::config::Layers;
use tirage_worker::WorkerSettings;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::check::{self, Verdict, leftovers};
use crate::clock::VirtualClock;
use crate::durable::Durable;
use crate::faults::FaultPlan;
use crate::fleet::{Fleet, Wiring};
use crate::ledger::Ledger;
use crate::objects::SimObjects;
use crate::receivers::Receivers;
use crate::replicas::Replicas;
use crate::restarts;
use crate::rng::Stream;
use crate::workload::{self, Client};

/// How long a run may last in virtual time before it counts as stuck.
const HORIZON: Duration = Duration::from_secs(30 * 60);
/// How often the driver looks whether the run is quiet.
const TICK: Duration = Duration::from_millis(500);
/// How long the loops get to stop once told.
const STOP_WAIT: Duration = Duration::from_secs(60);
/// The workers' callback key (no callback is sent in this slice; the settings need one).
const SECRET: &str = "sim-callback-secret-0001";

/// What a run produced.
#[derive(Debug, Default)]
pub struct RunReport {
    pub digest: u64,
    pub entries: u64,
    pub verdict: Verdict,
    pub counts: BTreeMap<String, u64>,
    pub virtual_ms: u64,
    /// One line: nodes, replicas, batches, photos, fault profile.
    pub shape: String,
    pub trace: Vec<String>,
}

/// The compiled-in defaults, read once per process.
fn defaults() -> &'static (WorkerSettings, tirage_api::Settings) {
    static DEFAULTS: OnceLock<(WorkerSettings, tirage_api::Settings)> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        let layers = Layers::defaults_only();
        let worker = WorkerSettings::from_layers(&layers).expect("the default [worker] section");
        let api = tirage_api::Settings::load_from(&layers).expect("the default API settings");
        (worker, api)
    })
}

/// The workers' settings of this run (every node the same).
fn worker_settings(rng: &Stream) -> WorkerSettings {
    WorkerSettings {
        host: "127.0.0.1".into(),
        port: 0,
        concurrency: rng.usize_in(1, 3),
        effects_concurrency: rng.usize_in(1, 4),
        callback_per_host: rng.usize_in(1, 2),
        crash_limit: u32::try_from(rng.range(2, 3)).unwrap_or(3),
        io_timeout_ms: rng.range(2_000, 5_000),
        retry_base_ms: rng.range(200, 1_000),
        retry_cap_ms: rng.range(5_000, 20_000),
        retry_for_ms: rng.range(60_000, 600_000),
        reconcile_every_ms: rng.range(2_000, 5_000),
        // From well below a run's backlog (a batch waiting behind others looks stalled) to
        // above it; also when an effect's claim goes stale (half of it).
        stall_after_ms: rng.range(5_000, 120_000),
        callback_timeout_ms: rng.range(1_000, 3_000),
        callback_retry_for_ms: rng.range(30_000, 120_000),
        shutdown_grace_ms: 2_000,
        callback_secret: SecretString::from(SECRET),
        ..defaults().0.clone()
    }
}

/// A backlog run's stall threshold: a half to a third of the time the nodes need for every
/// photo's engine run, so that batches queued behind others look stalled long before their
/// turn (never below two reconciler periods).
fn backlog_stall(
    plans: &[workload::BatchPlan],
    nodes: usize,
    settings: &WorkerSettings,
    rng: &Stream,
) -> u64 {
    let engine_ms: u64 = plans
        .iter()
        .flat_map(|b| b.uploads.iter().flatten())
        .map(|p| u64::from(p.cpu_ms))
        .sum();
    let lanes = u64::try_from(nodes * settings.effective_concurrency()).unwrap_or(1);
    let backlog_ms = engine_ms / lanes.max(1);
    (backlog_ms / rng.range(2, 3)).max(2 * settings.reconcile_every_ms)
}

/// Whether the run is quiet; if not, what is still going on.
async fn quiet(
    clients: &[JoinHandle<()>],
    wiring: &Wiring,
    (fleet, replicas, restarts): (&Fleet, &Replicas, &JoinHandle<()>),
    (elapsed, expiring): (Duration, bool),
    resweep: Duration,
) -> Result<(), String> {
    let state: &dyn StateStore = wiring.state.as_ref();
    let (ledger, queue) = (&wiring.ledger, &wiring.queue);
    if fleet.restarting() {
        return Err("a killed node is not started again yet".to_owned());
    }
    if replicas.restarting() {
        return Err("a killed replica is not started again yet".to_owned());
    }
    if !restarts.is_finished() {
        return Err("a state-store restart is still to come".to_owned());
    }
    let lost = ledger.lost_writes();
    let running = clients.iter().filter(|c| !c.is_finished()).count();
    if running > 0 {
        return Err(format!("{running} clients still working"));
    }
    for (id, info) in ledger.batches() {
        if lost.creations.contains(&id) || lost.deletes.contains(&id) {
            // The store forgot the batch, or forgot that it was deleted: nothing to wait for.
            continue;
        }
        if info.deleted_at.is_none() && info.expires_at <= elapsed {
            if !leftovers::is_swept(state, &wiring.objects, id, info.expires_at).await {
                return Err(format!("{}: expired, not swept yet", info.label));
            }
            continue;
        }
        if expiring && info.deleted_at.is_none() {
            let left = info.expires_at.saturating_sub(elapsed).as_millis();
            return Err(format!("{}: expires in {left} ms", info.label));
        }
        if lost.closes.contains(&id) {
            // Open for good: wait only for its photos.
            let batch = state.get_batch(id).await.ok().flatten();
            if let Some(b) = batch.filter(|b| b.done + b.failed < b.total) {
                let counted = b.done + b.failed;
                return Err(format!(
                    "{}: close lost, {counted}/{} counted",
                    info.label, b.total
                ));
            }
            continue;
        }
        if let Some(at) = info.deleted_at {
            // Deleted: quiet once its re-sweep is past and nothing is left.
            if elapsed < at + resweep {
                return Err(format!("{}: deleted, its re-sweep not due yet", info.label));
            }
            let left = wiring.objects.keys_under(&keys::batch_prefix(id)).len();
            if left > 0 {
                return Err(format!("{}: deleted, {left} objects left", info.label));
            }
            continue;
        }
        if !info.closed {
            continue;
        }
        let batch = state.get_batch(id).await.ok().flatten();
        let completed = batch
            .as_ref()
            .is_some_and(|b| b.state == BatchState::Completed);
        if !completed {
            let counted = batch.map_or_else(
                || "gone".to_owned(),
                |b| format!("{:?} {}/{}", b.state, b.done + b.failed, b.total),
            );
            return Err(format!("{} not completed ({counted})", info.label));
        }
        if !state
            .is_effect_done(id, Effect::Event)
            .await
            .unwrap_or(false)
        {
            return Err(format!("{}: event not done", info.label));
        }
        let calls_back = batch.as_ref().is_some_and(|b| b.callback_url.is_some());
        if calls_back
            && !state
                .is_effect_done(id, Effect::Callback)
                .await
                .unwrap_or(false)
        {
            return Err(format!("{}: callback not done", info.label));
        }
    }
    for lane in Lane::ALL {
        let waiting = queue.waiting(lane).await.unwrap_or(u64::MAX);
        if waiting > 0 {
            return Err(format!("{waiting} messages waiting on {}", lane.as_str()));
        }
    }
    let in_flight: i64 = fleet
        .live_nodes()
        .map(|n| n.metrics().in_flight.get())
        .sum();
    if in_flight > 0 {
        return Err(format!("{in_flight} jobs in flight"));
    }
    Ok(())
}

/// Runs seed `seed` to its end and checks it. Call inside a current-thread runtime with
/// paused time, within a `LocalSet`.
pub async fn run(seed: u64, trace: bool) -> RunReport {
    let start = tokio::time::Instant::now();
    let ledger = Arc::new(Ledger::new(trace));
    let rng = Stream::derive(seed, "world");
    let mut node_count = rng.usize_in(1, 4);
    let replica_count = rng.usize_in(1, 2);
    let mut settings = worker_settings(&rng);
    let plans = workload::draw(seed);
    let backlog = workload::backlog_profile(seed);
    if backlog {
        node_count = node_count.min(2);
        settings.stall_after_ms = backlog_stall(&plans, node_count, &settings, &rng);
    }
    let fault_end = rng.millis(20_000, 180_000);
    let client_timeout = rng.millis(5_000, 30_000);
    let plan = Arc::new(FaultPlan::draw(seed, settings.io_timeout()));

    let clock: Arc<dyn Clock> = Arc::new(VirtualClock::start());
    let queue = Arc::new(InProcessQueue::new());
    let mut events = queue.events();
    let wiring = Arc::new(Wiring {
        seed,
        plan: plan.clone(),
        ledger: ledger.clone(),
        clock: clock.clone(),
        state: Arc::new(Durable::new(clock.clone())),
        queue: queue.clone(),
        objects: Arc::new(SimObjects::new(clock.clone())),
        receivers: Arc::new(Receivers::draw(seed, ledger.clone())),
    });
    let state = wiring.state.clone();
    let stop = CancellationToken::new();
    let (crash_limit, retry_for_ms) = (settings.crash_limit, settings.retry_for_ms);
    let mut fleet = Fleet::start(wiring.clone(), settings.clone(), node_count, stop.clone());
    let restarts = restarts::schedule(seed, &plan, &wiring.state, &ledger);

    let mut api = defaults().1.clone();
    // Upload tickets of 30 s: a deleted batch's prefix is swept again a minute later.
    api.api.presign_ttl_secs = 30;
    // About one seed in seven lets its batches expire, from 30 s to 3 min after their
    // creation: some before they complete, some even before their client is done; the run
    // then waits for every batch to expire and be swept (I7).
    let expiry = Stream::derive(seed, "expiry");
    let expiring = expiry.chance(0.15);
    if expiring {
        api.limits.batch_ttl_secs = expiry.range(30, 180);
    }
    let resweep = api.api.presign_ttl().saturating_mul(2)
        + Duration::from_millis(settings.reconcile_every_ms.saturating_mul(3));
    let replicas = Arc::new(Replicas::start(wiring.clone(), api.clone(), replica_count));

    let photos: usize = plans
        .iter()
        .map(|b| b.uploads.iter().map(Vec::len).sum::<usize>())
        .sum();
    let shape = format!(
        "{node_count} nodes (concurrency {}), {replica_count} replicas, {} batches, {photos} photos, {}{}{}",
        settings.effective_concurrency(),
        plans.len(),
        if plan.calm { "calm" } else { "faulty" },
        if backlog {
            format!(", backlog run (stall after {} ms)", settings.stall_after_ms)
        } else {
            String::new()
        },
        if expiring {
            format!(", batches expire after {} s", api.limits.batch_ttl_secs)
        } else {
            String::new()
        }
    );
    ledger.note("sim", "world", "", &shape);
    let clients: Vec<JoinHandle<()>> = plans
        .into_iter()
        .map(|batch| {
            let callback_url = wiring.receivers.url_for(&batch.label);
            let client = Client {
                rng: Stream::derive(seed, &format!("client/{}", batch.label)),
                plan: batch,
                replicas: replicas.clone(),
                ledger: ledger.clone(),
                timeout: client_timeout,
                batch: std::cell::Cell::new(None),
                callback_url,
            };
            tokio::task::spawn_local(client.run())
        })
        .collect();

    let mut verdict = Verdict::default();
    loop {
        tokio::time::sleep(TICK).await;
        let elapsed = start.elapsed();
        let clients_done = clients.iter().all(JoinHandle::is_finished);
        if !plan.healed() && ((clients_done && elapsed >= fault_end) || elapsed >= HORIZON / 2) {
            plan.heal();
            ledger.note("sim", "heal", "", "");
        }
        fleet.chaos(elapsed).await;
        replicas.chaos(elapsed).await;
        let outstanding = quiet(
            &clients,
            &wiring,
            (&fleet, &replicas, &restarts),
            (elapsed, expiring),
            resweep,
        )
        .await;
        match outstanding {
            Ok(()) => break,
            Err(what) if elapsed >= HORIZON => {
                verdict.violations.push(format!(
                    "not quiet after {} s of virtual time: {what}",
                    HORIZON.as_secs()
                ));
                break;
            }
            Err(_) => {}
        }
    }
    let virtual_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    ledger.note("sim", "stop", "", "");
    stop.cancel();
    restarts.abort();
    for client in clients {
        if client.is_finished() {
            if let Err(e) = client.await {
                verdict
                    .violations
                    .push(format!("a client task failed: {e}"));
            }
        } else {
            client.abort();
        }
    }
    match tokio::time::timeout(STOP_WAIT, futures::future::join_all(fleet.take_loops())).await {
        Ok(stopped) => {
            for r in stopped {
                if let Err(e) = r {
                    verdict
                        .violations
                        .push(format!("a consume loop failed: {e}"));
                }
            }
        }
        Err(_) => verdict.violations.push(format!(
            "the consume loops did not stop within {} s of being told",
            STOP_WAIT.as_secs()
        )),
    }

    let checked = check::check(
        (crash_limit, Duration::from_millis(retry_for_ms)),
        (&ledger, &wiring.receivers),
        state.as_ref(),
        &wiring.objects,
        &mut events,
    )
    .await;
    verdict.violations.extend(checked.violations);
    verdict.known.extend(checked.known);
    let mut counts = ledger.counts();
    let repairs = check::repairs(fleet.every_node(), plan.calm, &mut verdict);
    counts.extend(repairs);
    RunReport {
        digest: ledger.digest(),
        entries: ledger.entries(),
        counts,
        virtual_ms,
        shape,
        trace: ledger.take_trace(),
        verdict,
    }
}
