//! The invariants, read from the stores themselves (no fault in the way) and the ledger once
//! the run is over. A breach is a `Violation` and fails the seed; a breach the documentation
//! names as not survived (or that this slice found and classified) is `Known`: counted and
//! printed with its reason, never failing.
//!
//! | # | invariant |
//! |---|---|
//! | I1 | every registered photo ends exactly once: none left queued; exactly one outcome recorded per photo (the state store's own answers, as the ledger saw them); every photo a client was told is accepted is listed; a done photo has a rendition object per size, of the recorded size and digest; the outcome is one the photo's fate, or the faults, explain (`worker_crashed` only after `crash_limit` runs of it started on nodes the run killed) |
//! | I2 | done + failed = total = the photos listed, and done and failed are the counts of each state |
//! | I3 | every batch closed (close answered `Ok`) is completed |
//! | I4 | `batch.completed` goes out at most once per batch, unless its publisher was told it failed after it went out or died before marking it done; at least once for every completed batch, whose event effect is then marked done |
//! | I5 | waiting is not lost: in a calm run (nothing lost, only queues that run long against `stall_after_ms`) the reconciler republishes no job and redrives no finalisation |
//! | I6 | a deleted batch leaves nothing behind: no record, and no object under its prefix once its re-sweep (twice the upload tickets' life later) has run; I1–I3 do not apply to it, I4's at-most-once does |
//! | I7 | an expired batch leaves no record, leaves the reconciler's index, and leaves no object written before it expired (`check/leftovers.rs`) |
//! | I8 | a completed batch's callback is taken by its receiver at most once unless a fault excuses a second (its answer lost, its sender dead before the mark, the mark lost), at least once by a receiver that takes every one, tried at least once by any other, and marked done (`check/callbacks.rs`) |
//!
//! A state-store restart that loses its last second ([`crate::durable`]) excuses, as
//! `Known`, only the breaches of what it lost: a photo accepted but missing (its
//! registration), a batch gone and its client refused (its creation), a closed batch left
//! open (its close), a deleted batch back (its delete), an event repeated (its done mark).
//! An outcome it lost is not excused: the photo must be recorded again, exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use tirage_core::codes::{Effect, FailureCode};
use tirage_core::keys;
use tirage_core::model::{BatchCompleted, BatchState, PhotoRecord, PhotoState, Rendition};
use tirage_embedded::inprocess::Event;
use tirage_ports::StateStore;
use tirage_worker::{JobKind, JobOutcome, Metrics, Node, Repair};
use tokio::sync::broadcast::{self, error::TryRecvError};
use uuid::Uuid;

use crate::engine::Fate;
use crate::ledger::Ledger;
use crate::objects::SimObjects;
use crate::receivers::Receivers;

mod callbacks;
pub mod leftovers;

/// How far apart two hosts' clocks may be (the product's `HOST_CLOCK_SKEW`): an API replica
/// may refuse a batch as expired this much before the store does.
const HOST_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// The classes of breach a state-store restart causes by losing its last second, as
/// docs/RELIABILITY.md lists them under *Not survived*.
const LOST_CREATION: &str = "restart lost a batch's creation";
const LOST_REGISTRATION: &str = "restart lost a photo's registration";
const LOST_CLOSE: &str = "restart lost a batch's close";
const LOST_DELETE: &str = "restart lost a batch's delete";
const LOST_RUN_ENDS: &str = "restart lost the ends of runs";

#[derive(Debug, Default)]
pub struct Verdict {
    pub violations: Vec<String>,
    /// (class, detail).
    pub known: Vec<(String, String)>,
}

impl Verdict {
    fn violation(&mut self, message: String) {
        self.violations.push(message);
    }

    fn known(&mut self, class: &str, detail: String) {
        self.known.push((class.to_owned(), detail));
    }

    /// A breach: `Known` under `excuse` when a fault the documentation lists explains it,
    /// else a violation.
    fn breach(&mut self, message: String, excuse: Option<&str>) {
        match excuse {
            Some(class) => self.known(class, message),
            None => self.violation(message),
        }
    }
}

/// The `batch.completed` events the broker carried, by batch.
fn drain_events(
    events: &mut broadcast::Receiver<Event>,
    verdict: &mut Verdict,
) -> BTreeMap<Uuid, u32> {
    let mut by_batch = BTreeMap::new();
    loop {
        match events.try_recv() {
            Ok(event) => match serde_json::from_slice::<BatchCompleted>(&event.payload) {
                Ok(e) => *by_batch.entry(e.batch_id).or_default() += 1,
                Err(e) => verdict.violation(format!("I4: an event that does not parse: {e}")),
            },
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            Err(TryRecvError::Lagged(n)) => {
                verdict.violation(format!("sim: the event subscription lagged ({n} missed)"));
            }
        }
    }
    by_batch
}

/// Every photo of a batch, page by page.
async fn all_photos(state: &dyn StateStore, batch: Uuid) -> Result<Vec<PhotoRecord>, String> {
    let mut photos = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = state
            .list_photos(batch, cursor.as_deref(), 1000)
            .await
            .map_err(|e| e.to_string())?;
        photos.extend(page.photos);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(photos),
        }
    }
}

/// Why a failed photo failed: explained by its fate or the faults, known, or a violation.
fn check_failure(
    verdict: &mut Verdict,
    label: &str,
    fate: Fate,
    code: FailureCode,
    (killed_runs, lost_ends, crash_limit): (usize, usize, u32),
    (backoffs, retry_for): (Duration, Duration),
) {
    let at_limit = |runs: usize| u32::try_from(runs).unwrap_or(u32::MAX) >= crash_limit;
    match (code, fate) {
        (FailureCode::CorruptImage, Fate::Corrupt)
        | (FailureCode::InternalError, Fate::Panic)
        // The API's publish was not confirmed (an injected queue fault).
        | (FailureCode::EnqueueFailed, _) => {}
        // Its own retries waited half its budget or more in backoffs: the faults outlasted
        // the budget (a wait in the queue behind other jobs never counts: seeds 26459…).
        (FailureCode::RetriesExhausted, _) if backoffs >= retry_for / 2 => {}
        // Runs that really died with their node, as many as the limit.
        (FailureCode::WorkerCrashed, _) if at_limit(killed_runs) => {}
        // With runs whose end a state-store restart lost: their holds lapsed as a dead
        // run's do, and the store cannot tell them apart.
        (FailureCode::WorkerCrashed, _) if at_limit(killed_runs + lost_ends) => verdict.known(
            LOST_RUN_ENDS,
            format!("I1 {label}: failed {code} after {lost_ends} runs whose end was lost"),
        ),
        (code, fate) => verdict.violation(format!(
            "I1 {label}: failed {code}, which neither its fate ({fate:?}) nor a fault explains"
        )),
    }
}

/// I5, and the reconciler's repairs and the resize deliveries handled, summed over the
/// nodes (for the run's counts).
pub fn repairs(nodes: &[Node], calm: bool, verdict: &mut Verdict) -> BTreeMap<String, u64> {
    let sum = |f: &dyn Fn(&Metrics) -> u64| nodes.iter().map(|n| f(&n.metrics())).sum::<u64>();
    let republished = sum(&|m| m.reconciled_count(Repair::Republished));
    let redriven = sum(&|m| m.reconciled_count(Repair::Redriven));
    let waiting = sum(&|m| m.reconciled_count(Repair::Waiting));
    let deliveries = sum(&|m| {
        JobOutcome::ALL
            .iter()
            .map(|o| m.job_count(JobKind::Resize, *o))
            .sum()
    });
    if calm && republished + redriven > 0 {
        verdict.violation(format!(
            "I5: a calm run, yet the reconciler republished {republished} jobs and redrove \
             {redriven} finalisations"
        ));
    }
    BTreeMap::from([
        ("reconciler_republished".to_owned(), republished),
        ("reconciler_redriven".to_owned(), redriven),
        ("reconciler_left_waiting".to_owned(), waiting),
        ("resize_deliveries".to_owned(), deliveries),
    ])
}

pub async fn check(
    (crash_limit, retry_for): (u32, Duration),
    (ledger, receivers): (&Ledger, &Receivers),
    state: &dyn StateStore,
    objects: &SimObjects,
    events: &mut broadcast::Receiver<Event>,
) -> Verdict {
    let mut verdict = Verdict::default();
    let lost = ledger.lost_writes();
    let batches = ledger.batches();
    for problem in ledger.problems() {
        let of = problem
            .batch
            .and_then(|b| batches.iter().find(|(id, _)| *id == b));
        if of.is_some_and(|(id, _)| lost.creations.contains(id)) {
            verdict.known(LOST_CREATION, format!("run: {}", problem.message));
        } else if of.is_some_and(|(_, info)| problem.at + HOST_CLOCK_SKEW >= info.expires_at) {
            // The batch had expired: refusing it is right.
            ledger.count("refused_after_expiry");
        } else {
            verdict.violation(format!("run: {}", problem.message));
        }
    }
    let mut events_of = drain_events(events, &mut verdict);
    let now = Duration::from_millis(ledger.now_ms());
    for (batch_id, info) in batches {
        let label = info.label.clone();
        let published = events_of.remove(&batch_id).unwrap_or(0);
        if info.deleted_at.is_none() && info.expires_at <= now {
            let mut left = Verdict::default();
            leftovers::swept(&mut left, ledger, (state, objects), batch_id, &info).await;
            // Unknown to the store: its objects (an upload whose clean-up failed) are the
            // bucket lifecycle's.
            let excuse = lost.creations.contains(&batch_id).then_some(LOST_CREATION);
            for breach in left.violations {
                verdict.breach(breach, excuse);
            }
            at_most_one_event(&mut verdict, ledger, batch_id, &label, published);
            continue;
        }
        if info.deleted_at.is_some() {
            let mut left = Verdict::default();
            leftovers::nothing_left(&mut left, state, objects, batch_id, &label).await;
            let excuse = lost.deletes.contains(&batch_id).then_some(LOST_DELETE);
            for breach in left.violations {
                verdict.breach(breach, excuse);
            }
            at_most_one_event(&mut verdict, ledger, batch_id, &label, published);
            continue;
        }
        let batch = match state.get_batch(batch_id).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                let excuse = lost.creations.contains(&batch_id).then_some(LOST_CREATION);
                verdict.breach(format!("I3 {label}: the batch is gone"), excuse);
                continue;
            }
            Err(e) => {
                verdict.violation(format!("sim: reading {label}: {e}"));
                continue;
            }
        };
        let photos = match all_photos(state, batch_id).await {
            Ok(p) => p,
            Err(e) => {
                verdict.violation(format!("sim: listing {label}: {e}"));
                continue;
            }
        };
        let (mut done, mut failed) = (0u64, 0u64);
        for photo in &photos {
            let Some(made) = ledger.photo(photo.id) else {
                verdict.violation(format!("I1 {label}: a photo no client uploaded is listed"));
                continue;
            };
            let plabel = made.label;
            let recorded = ledger.recorded_for(photo.id);
            match photo.state {
                PhotoState::Queued => {
                    verdict.violation(format!(
                        "I1 {plabel}: still queued ({:?}, {}/{} counted)",
                        batch.state,
                        batch.done + batch.failed,
                        batch.total
                    ));
                }
                PhotoState::Done | PhotoState::Failed if recorded.len() != 1 => {
                    verdict.violation(format!(
                        "I1 {plabel}: {} outcomes recorded: {}",
                        recorded.len(),
                        recorded.join("; ")
                    ));
                }
                _ => {}
            }
            match photo.state {
                PhotoState::Queued => {}
                PhotoState::Done => {
                    done += 1;
                    if made.fate != Fate::Ok {
                        verdict.violation(format!(
                            "I1 {plabel}: done, although its engine run {:?}",
                            made.fate
                        ));
                    }
                    check_renditions(&mut verdict, objects, &batch, photo, &plabel);
                }
                PhotoState::Failed => {
                    failed += 1;
                    match photo.error {
                        Some(code) => {
                            let lost_ends = lost.run_ends.get(&photo.id).copied().unwrap_or(0);
                            let crashes = (ledger.killed_runs(photo.id), lost_ends, crash_limit);
                            let retries = (ledger.backoffs_of(&plabel), retry_for);
                            check_failure(&mut verdict, &plabel, made.fate, code, crashes, retries);
                        }
                        None => verdict.violation(format!("I1 {plabel}: failed with no code")),
                    }
                }
            }
        }
        for (id, made) in ledger.photos_of(batch_id) {
            if ledger.is_accepted(id) && !photos.iter().any(|p| p.id == id) {
                let breach = format!("I1 {}: accepted by the API, not in its batch", made.label);
                let excuse = lost
                    .registrations
                    .contains(&id)
                    .then_some(LOST_REGISTRATION);
                verdict.breach(breach, excuse);
            }
        }
        let listed = photos.len() as u64;
        if batch.done + batch.failed != batch.total
            || batch.total != listed
            || batch.done != done
            || batch.failed != failed
        {
            verdict.violation(format!(
                "I2 {label}: done {} + failed {} vs total {}; listed {listed}, of which done {done}, failed {failed}",
                batch.done, batch.failed, batch.total
            ));
        }
        if info.closed && batch.state != BatchState::Completed {
            let breach = format!(
                "I3 {label}: closed but {:?} ({}/{} counted)",
                batch.state,
                batch.done + batch.failed,
                batch.total
            );
            verdict.breach(
                breach,
                lost.closes.contains(&batch_id).then_some(LOST_CLOSE),
            );
        }
        let marked = state
            .is_effect_done(batch_id, Effect::Event)
            .await
            .unwrap_or(false);
        at_most_one_event(&mut verdict, ledger, batch_id, &label, published);
        if batch.state == BatchState::Completed && (!marked || published == 0) {
            verdict.violation(format!(
                "I4 {label}: completed, but its event is {} and was published {published} times",
                if marked {
                    "marked done"
                } else {
                    "not marked done"
                }
            ));
        }
        if batch.state == BatchState::Completed {
            let seen = (ledger, receivers);
            callbacks::callback_once(&mut verdict, seen, state, &batch, &label).await;
        }
        if published > 0 && batch.state != BatchState::Completed {
            let breach = format!(
                "I4 {label}: batch.completed published for a batch {:?}",
                batch.state
            );
            // The close completed it, the event went out, and the close was lost.
            verdict.breach(
                breach,
                lost.closes.contains(&batch_id).then_some(LOST_CLOSE),
            );
        }
    }
    if !events_of.is_empty() {
        verdict.violation(format!(
            "I4: {} batch.completed events for batches no client made",
            events_of.values().sum::<u32>()
        ));
    }
    verdict
}

/// I4's first half: `batch.completed` at most once, unless a fault the documentation lists
/// excuses a second.
fn at_most_one_event(
    verdict: &mut Verdict,
    ledger: &Ledger,
    batch_id: Uuid,
    label: &str,
    published: u32,
) {
    if published <= 1 {
        return;
    }
    if let Some(why) = ledger.excuse_of(batch_id, Effect::Event) {
        verdict.known(
            &format!("I4 event repeated: {why}"),
            format!(
                "{label}: batch.completed published {published} times: {why} (docs/\
                 RELIABILITY.md, Not survived)"
            ),
        );
    } else {
        verdict.violation(format!(
            "I4 {label}: batch.completed published {published} times, no fault excuses it"
        ));
    }
}

/// A done photo's renditions: one per size of the batch, each stored with the size and
/// digest its record holds.
fn check_renditions(
    verdict: &mut Verdict,
    objects: &SimObjects,
    batch: &tirage_core::model::Batch,
    photo: &PhotoRecord,
    label: &str,
) {
    let mut sizes: Vec<u32> = photo.outputs.iter().map(|r| r.size).collect();
    sizes.sort_unstable();
    let mut wanted = batch.options.sizes.clone();
    wanted.sort_unstable();
    if sizes != wanted {
        verdict.violation(format!(
            "I1 {label}: renditions {sizes:?} recorded for sizes {wanted:?}"
        ));
    }
    for output in &photo.outputs {
        let key = keys::rendition_key(batch.id, photo.id, output.size, batch.options.format);
        match objects.peek(&key) {
            None => verdict.violation(format!(
                "I1 {label}: its {} rendition is recorded but not stored",
                output.size
            )),
            Some(data) => {
                if data.len() as u64 != output.bytes {
                    verdict.violation(format!(
                        "I1 {label}: its {} rendition is {} bytes, recorded {}",
                        output.size,
                        data.len(),
                        output.bytes
                    ));
                }
                if output.digest.as_deref() != Some(Rendition::digest_of(&data).as_str()) {
                    verdict.violation(format!(
                        "I1 {label}: its {} rendition's digest differs from the record",
                        output.size
                    ));
                }
            }
        }
    }
}
