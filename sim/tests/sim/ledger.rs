//! What happened in one run, as the simulator saw it: the photos and batches the workload
//! made (under sim labels, `b1` and `b1p3`, never their random UUIDs), what the clients were
//! told, each outcome the state store recorded and who recorded it, each engine run, each
//! injected fault. The checker reads it beside the stores; every entry also goes into the
//! run's digest (FNV-1a over virtual time, actor, operation, labels and result), which is
//! what `determinism` compares and `replay` prints.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use tirage_core::codes::Effect;
use tirage_ports::WorkItem;
use uuid::Uuid;

use crate::durable::Lost;
use crate::engine::Fate;
use crate::rng::{FNV_OFFSET, fnv1a};

/// A photo the workload made.
#[derive(Debug, Clone)]
pub struct PhotoInfo {
    pub label: String,
    pub batch: Uuid,
    pub fate: Fate,
    pub cpu_ms: u64,
    /// (batch index, photo index): written into the photo's bytes, read back by the engine.
    pub tag: (u16, u16),
}

#[derive(Debug, Clone)]
pub struct BatchInfo {
    pub label: String,
    /// `close` answered `Ok`.
    pub closed: bool,
    /// When `delete` answered `Ok` (virtual time since the run's start).
    pub deleted_at: Option<std::time::Duration>,
    /// When the batch expires (virtual time since the run's start, as the state store
    /// reads it).
    pub expires_at: std::time::Duration,
}

/// What state-store restarts lost of what clients were told had happened (see
/// [`crate::durable`]): the breaches they cause are the ones docs/RELIABILITY.md lists as
/// not survived.
#[derive(Debug, Clone, Default)]
pub struct LostWrites {
    /// Batches whose creation was lost.
    pub creations: BTreeSet<Uuid>,
    /// Photos whose registration was lost.
    pub registrations: BTreeSet<Uuid>,
    /// Batches whose close was lost.
    pub closes: BTreeSet<Uuid>,
    /// Batches whose delete was lost.
    pub deletes: BTreeSet<Uuid>,
    /// Photo → runs whose end was lost and whose start was kept: holds left to lapse,
    /// which count as crashed runs.
    pub run_ends: BTreeMap<Uuid, usize>,
}

/// A batch's callback, as its receiver saw it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallbackLog {
    /// Attempts that reached the receiver.
    pub attempts: u32,
    /// Attempts it took (answered `2xx`, or took before its answer was lost).
    pub taken: u32,
}

/// A failure of the simulator, or a refusal no client expects.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The batch it concerns, if one does.
    pub batch: Option<Uuid>,
    /// When (virtual time since the run's start).
    pub at: std::time::Duration,
    pub message: String,
}

#[derive(Default)]
struct Inner {
    digest: u64,
    entries: u64,
    trace: Option<Vec<String>>,
    batches: BTreeMap<Uuid, BatchInfo>,
    photos: BTreeMap<Uuid, PhotoInfo>,
    /// Photos an upload answered `Ok` for.
    accepted: BTreeSet<Uuid>,
    /// Photo → every `Recorded` answer the state store gave for it (who, what).
    recorded: BTreeMap<Uuid, Vec<String>>,
    /// Photo → engine runs.
    engine_runs: BTreeMap<Uuid, u32>,
    /// Photo → the actors that started a run of it (`start_run` answered `Started`).
    runs_started: BTreeMap<Uuid, Vec<String>>,
    /// Actors killed during the run.
    killed: BTreeSet<String>,
    /// (Batch, effect) → why the effect may have happened twice: its sender was told it
    /// failed after it happened, died before marking it done, or its mark was lost.
    excused: BTreeMap<(Uuid, &'static str), &'static str>,
    /// Actor → effects it carried out and has not marked done yet.
    unmarked: BTreeMap<String, BTreeSet<(Uuid, &'static str)>>,
    /// Work item (its subject, `b1p3`) → the backoffs its retries asked for, summed.
    backoffs: BTreeMap<String, std::time::Duration>,
    /// Batch → its callback's attempts, as its receiver saw them.
    callbacks: BTreeMap<Uuid, CallbackLog>,
    counts: BTreeMap<String, u64>,
    /// The simulator's own failures (a broken assumption), and refusals no client expects,
    /// with the batch they concern when there is one.
    problems: Vec<Problem>,
    lost: LostWrites,
}

pub struct Ledger {
    inner: Mutex<Inner>,
    start: tokio::time::Instant,
}

impl Ledger {
    /// `trace`: keep every entry as a line (replay prints them).
    pub fn new(trace: bool) -> Ledger {
        Ledger {
            inner: Mutex::new(Inner {
                digest: FNV_OFFSET,
                trace: trace.then(Vec::new),
                ..Inner::default()
            }),
            start: tokio::time::Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Virtual milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One entry of the trace and the digest.
    pub fn note(&self, actor: &str, op: &str, subject: &str, result: &str) {
        let ms = self.now_ms();
        let mut inner = self.lock();
        let mut d = fnv1a(inner.digest, &ms.to_le_bytes());
        for part in [actor, op, subject, result] {
            d = fnv1a(d, part.as_bytes());
            d = fnv1a(d, &[0xff]);
        }
        inner.digest = d;
        inner.entries += 1;
        if let Some(trace) = inner.trace.as_mut() {
            trace.push(format!("{ms:>9} {actor:<4} {op:<20} {subject} {result}"));
        }
    }

    pub fn count(&self, key: &str) {
        *self.lock().counts.entry(key.to_owned()).or_default() += 1;
    }

    /// An injected fault: noted and counted by kind.
    pub fn fault(&self, actor: &str, port: &str, op: &str, kind: &str, subject: &str) {
        self.note(
            actor,
            &format!("{port}.{op}"),
            subject,
            &format!("FAULT {kind}"),
        );
        self.count(&format!("fault.{kind}"));
    }

    pub fn problem(&self, message: String) {
        self.problem_of(None, message);
    }

    /// A problem concerning `batch`.
    pub fn problem_of(&self, batch: Option<Uuid>, message: String) {
        self.note("sim", "problem", "", &message);
        let at = self.start.elapsed();
        self.lock().problems.push(Problem { batch, at, message });
    }

    /// The state store restarted and lost `lost` (oldest first): outcomes it never kept are
    /// forgotten (their photos are recorded again), an event whose done mark is lost may go
    /// out again, and the rest is kept for the checker.
    pub fn state_restarted(&self, lost: Vec<Lost>) {
        self.note(
            "sim",
            "state_restarted",
            "",
            &format!("{} writes lost", lost.len()),
        );
        let mut inner = self.lock();
        for lost in lost.into_iter().rev() {
            match lost {
                Lost::Nothing => {}
                Lost::Created(batch) => {
                    inner.lost.creations.insert(batch);
                }
                Lost::Registered(photos) => inner.lost.registrations.extend(photos),
                Lost::Closed(batch) => {
                    inner.lost.closes.insert(batch);
                }
                Lost::Deleted(batch) => {
                    inner.lost.deletes.insert(batch);
                }
                Lost::Recorded(photo) => {
                    if let Some(recorded) = inner.recorded.get_mut(&photo) {
                        recorded.pop();
                    }
                    *inner.counts.entry("outcomes_lost".to_owned()).or_default() += 1;
                }
                // Newest first: a run's end is met before its start, so a run lost whole
                // leaves nothing.
                Lost::RunEnded(photo) => *inner.lost.run_ends.entry(photo).or_default() += 1,
                Lost::RunStarted(photo) => {
                    if let Some(ends) = inner.lost.run_ends.get_mut(&photo) {
                        *ends = ends.saturating_sub(1);
                    }
                }
                Lost::EffectMarked(batch, effect) => {
                    inner
                        .excused
                        .entry((batch, effect.as_str()))
                        .or_insert("its done mark was lost when the state store restarted");
                }
            }
        }
    }

    pub fn lost_writes(&self) -> LostWrites {
        self.lock().lost.clone()
    }

    pub fn register_batch(&self, id: Uuid, label: String, expires_at: std::time::Duration) {
        self.note("sim", "batch", &label, "created");
        self.lock().batches.insert(
            id,
            BatchInfo {
                label,
                closed: false,
                deleted_at: None,
                expires_at,
            },
        );
    }

    pub fn register_photo(&self, id: Uuid, info: PhotoInfo) {
        self.lock().photos.insert(id, info);
    }

    pub fn accepted(&self, ids: &[Uuid]) {
        let mut inner = self.lock();
        inner.accepted.extend(ids.iter().copied());
    }

    pub fn closed(&self, id: Uuid) {
        if let Some(b) = self.lock().batches.get_mut(&id) {
            b.closed = true;
        }
    }

    pub fn deleted(&self, id: Uuid) {
        self.count("deletes");
        let at = self.start.elapsed();
        if let Some(b) = self.lock().batches.get_mut(&id) {
            b.deleted_at.get_or_insert(at);
        }
    }

    pub fn recorded(&self, actor: &str, photo: Uuid, what: &str) {
        let subject = self.photo_label(photo);
        self.note(actor, "recorded", &subject, what);
        self.lock()
            .recorded
            .entry(photo)
            .or_default()
            .push(format!("{actor}: {what}"));
    }

    pub fn engine_run(&self, actor: &str, photo: Uuid) {
        let subject = self.photo_label(photo);
        self.note(actor, "engine", &subject, "run");
        *self.lock().engine_runs.entry(photo).or_default() += 1;
        self.count("engine_runs");
    }

    pub fn run_started(&self, actor: &str, photo: Uuid) {
        self.lock()
            .runs_started
            .entry(photo)
            .or_default()
            .push(actor.to_owned());
    }

    /// `actor` was killed. An effect it carried out without marking it done happens again
    /// once its claim is stale: nothing can tell it happened (docs/RELIABILITY.md).
    pub fn killed(&self, actor: &str) {
        self.note(actor, "killed", "", "");
        self.count("kills");
        let mut inner = self.lock();
        inner.killed.insert(actor.to_owned());
        let unmarked = inner.unmarked.remove(actor).unwrap_or_default();
        for effect in unmarked {
            inner
                .excused
                .entry(effect)
                .or_insert("its sender died before marking it done");
        }
    }

    /// How many runs of `photo` were started by actors later killed: the crashes the
    /// photo really went through (a run that ended before its node died counts too, so
    /// this is an upper bound).
    pub fn killed_runs(&self, photo: Uuid) -> usize {
        let inner = self.lock();
        inner.runs_started.get(&photo).map_or(0, |actors| {
            actors.iter().filter(|a| inner.killed.contains(*a)).count()
        })
    }

    /// A second `effect` of `batch` is excused, for `why`.
    pub fn excuse(&self, batch: Uuid, effect: Effect, why: &'static str) {
        self.lock()
            .excused
            .entry((batch, effect.as_str()))
            .or_insert(why);
    }

    /// `actor` carried out `effect` of `batch` (the event went out, the receiver took the
    /// callback); until it marks it done, its death excuses a second one.
    pub fn effect_happened(&self, actor: &str, batch: Uuid, effect: Effect) {
        self.lock()
            .unmarked
            .entry(actor.to_owned())
            .or_default()
            .insert((batch, effect.as_str()));
    }

    pub fn effect_marked(&self, actor: &str, batch: Uuid, effect: Effect) {
        if let Some(effects) = self.lock().unmarked.get_mut(actor) {
            effects.remove(&(batch, effect.as_str()));
        }
    }

    /// A callback attempt of `batch` reached its receiver, which `took` it or not.
    pub fn callback_attempt(&self, actor: &str, batch: Uuid, what: &str, took: bool) {
        let subject = self.batch_label(batch);
        self.note(actor, "callback", &subject, what);
        self.count("callback_attempts");
        let mut inner = self.lock();
        let log = inner.callbacks.entry(batch).or_default();
        log.attempts += 1;
        if took {
            log.taken += 1;
        }
    }

    /// A retry of the work item `subject` asked to wait `delay`.
    pub fn backed_off(&self, subject: &str, delay: std::time::Duration) {
        *self.lock().backoffs.entry(subject.to_owned()).or_default() += delay;
    }

    /// The backoffs the retries of `subject` asked for, summed.
    pub fn backoffs_of(&self, subject: &str) -> std::time::Duration {
        self.lock()
            .backoffs
            .get(subject)
            .copied()
            .unwrap_or_default()
    }

    pub fn callback_log(&self, batch: Uuid) -> CallbackLog {
        self.lock()
            .callbacks
            .get(&batch)
            .copied()
            .unwrap_or_default()
    }

    pub fn photo(&self, id: Uuid) -> Option<PhotoInfo> {
        self.lock().photos.get(&id).cloned()
    }

    pub fn batch_label(&self, id: Uuid) -> String {
        self.lock()
            .batches
            .get(&id)
            .map_or_else(|| "b?".to_owned(), |b| b.label.clone())
    }

    pub fn photo_label(&self, id: Uuid) -> String {
        self.lock()
            .photos
            .get(&id)
            .map_or_else(|| "p?".to_owned(), |p| p.label.clone())
    }

    /// A work item as labels: `b1p3`, `fin:b1`, `cb:b1`.
    pub fn item_subject(&self, item: &WorkItem) -> String {
        match item {
            WorkItem::Resize(job) => self.photo_label(job.photo_id),
            WorkItem::FinalizeBatch { batch_id, redrive } => {
                let redrive = if *redrive { "+redrive" } else { "" };
                format!("fin:{}{redrive}", self.batch_label(*batch_id))
            }
            WorkItem::Callback { batch_id, .. } => format!("cb:{}", self.batch_label(*batch_id)),
        }
    }

    /// An object key as labels: `b1p3/360.jpg`, `b1p3/original`, `b1/…`.
    pub fn key_subject(&self, key: &str) -> String {
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            ["batches", b, "photos", p, rest @ ..] => {
                match (Uuid::parse_str(b), Uuid::parse_str(p)) {
                    (Ok(_), Ok(p)) => format!("{}/{}", self.photo_label(p), rest.join("/")),
                    _ => key.to_owned(),
                }
            }
            ["batches", b, rest @ ..] => match Uuid::parse_str(b) {
                Ok(b) => format!("{}/{}", self.batch_label(b), rest.join("/")),
                Err(_) => key.to_owned(),
            },
            _ => key.to_owned(),
        }
    }

    pub fn digest(&self) -> u64 {
        self.lock().digest
    }

    pub fn entries(&self) -> u64 {
        self.lock().entries
    }

    pub fn take_trace(&self) -> Vec<String> {
        self.lock().trace.take().unwrap_or_default()
    }

    pub fn batches(&self) -> Vec<(Uuid, BatchInfo)> {
        self.lock()
            .batches
            .iter()
            .map(|(id, b)| (*id, b.clone()))
            .collect()
    }

    pub fn photos_of(&self, batch: Uuid) -> Vec<(Uuid, PhotoInfo)> {
        self.lock()
            .photos
            .iter()
            .filter(|(_, p)| p.batch == batch)
            .map(|(id, p)| (*id, p.clone()))
            .collect()
    }

    pub fn is_accepted(&self, photo: Uuid) -> bool {
        self.lock().accepted.contains(&photo)
    }

    pub fn recorded_for(&self, photo: Uuid) -> Vec<String> {
        self.lock()
            .recorded
            .get(&photo)
            .cloned()
            .unwrap_or_default()
    }

    /// Why a second `effect` of `batch` is excused, if it is.
    pub fn excuse_of(&self, batch: Uuid, effect: Effect) -> Option<&'static str> {
        self.lock().excused.get(&(batch, effect.as_str())).copied()
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.lock().counts.clone()
    }

    pub fn problems(&self) -> Vec<Problem> {
        self.lock().problems.clone()
    }
}
