//! What happened in one run, as the simulator saw it: the photos and batches the workload
//! made (under sim labels, `b1` and `b1p3`, never their random UUIDs), what the clients were
//! told, each outcome the state store recorded and who recorded it, each engine run, each
//! injected fault. The checker reads it beside the stores; every entry also goes into the
//! run's digest (FNV-1a over virtual time, actor, operation, labels and result), which is
//! what `determinism` compares and `replay` prints.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use tirage_ports::WorkItem;
use uuid::Uuid;

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
    /// Batches whose `batch.completed` went out and whose publisher was then told it failed.
    event_excused: BTreeMap<Uuid, &'static str>,
    /// Actor → batches whose event it published and has not marked done yet.
    events_unmarked: BTreeMap<String, BTreeSet<Uuid>>,
    counts: BTreeMap<String, u64>,
    /// The simulator's own failures (a broken assumption), and refusals no client expects.
    problems: Vec<String>,
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
        self.note("sim", "problem", "", &message);
        self.lock().problems.push(message);
    }

    pub fn register_batch(&self, id: Uuid, label: String) {
        self.note("sim", "batch", &label, "created");
        self.lock().batches.insert(
            id,
            BatchInfo {
                label,
                closed: false,
                deleted_at: None,
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

    /// `actor` was killed. An event it published without marking it done goes out again
    /// once its claim is stale: nothing can tell it went out (docs/RELIABILITY.md).
    pub fn killed(&self, actor: &str) {
        self.note(actor, "killed", "", "");
        self.count("kills");
        let mut inner = self.lock();
        inner.killed.insert(actor.to_owned());
        let unmarked = inner.events_unmarked.remove(actor).unwrap_or_default();
        for batch in unmarked {
            inner
                .event_excused
                .entry(batch)
                .or_insert("its publisher died before marking it done");
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

    /// A second `batch.completed` of `batch` is excused, for `why`.
    pub fn excuse_event(&self, batch: Uuid, why: &'static str) {
        self.lock().event_excused.entry(batch).or_insert(why);
    }

    pub fn event_published(&self, actor: &str, batch: Uuid) {
        self.lock()
            .events_unmarked
            .entry(actor.to_owned())
            .or_default()
            .insert(batch);
    }

    pub fn event_marked(&self, actor: &str, batch: Uuid) {
        if let Some(batches) = self.lock().events_unmarked.get_mut(actor) {
            batches.remove(&batch);
        }
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

    /// Why a second event of `batch` is excused, if it is.
    pub fn event_excuse(&self, batch: Uuid) -> Option<&'static str> {
        self.lock().event_excused.get(&batch).copied()
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.lock().counts.clone()
    }

    pub fn problems(&self) -> Vec<String> {
        self.lock().problems.clone()
    }
}
