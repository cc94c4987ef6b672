//! The state store as Redis keeps it on disk: an append-only file of the writes it
//! acknowledged, flushed every second (`appendfsync everysec`, as every deploy runs it).
//! [`Durable`] wraps the one `MemoryStateStore` of a run and keeps that file as a journal:
//! every call that may change something, with the date it ran at and a way to run it again.
//! A restart ([`Durable::crash`], then [`Durable::restart`]) is what a `kill -9` of Redis
//! and a start on its AOF do: the last writes (up to a second) are gone, the store refuses
//! every call while it is down, and the new store is rebuilt by running the journal again,
//! each call at its own date ([`PinnedClock`]). The embedded store draws nothing at random,
//! so the same calls at the same dates rebuild exactly the state they made.
//!
//! Each journaled write says what losing it means for the invariants ([`Lost`]); the
//! restart tells the ledger, which uses it to excuse the breaches docs/RELIABILITY.md lists
//! as not survived (a registration or a close lost with its second) and to forget outcomes
//! that were never kept (the reconciler records them again).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tirage_embedded::MemoryStateStore;
use tirage_ports::{Clock, StateError};
use uuid::Uuid;

mod ports;

/// What losing one acknowledged write means for the invariants.
#[derive(Debug, Clone)]
pub enum Lost {
    /// Nothing an invariant reads (a lease, a claim, a hold, a charge, a mark).
    Nothing,
    /// A batch's creation: the client's later calls find no batch.
    Created(Uuid),
    /// Photos registered: their jobs are strays, and the client was told `202`.
    Registered(Vec<Uuid>),
    /// A batch's close: the client saw it succeed, the batch stays open.
    Closed(Uuid),
    /// A batch's delete: its record comes back.
    Deleted(Uuid),
    /// A photo's outcome: the photo is queued again, to be resized and recorded again.
    Recorded(Uuid),
    /// A batch's effect marked done: a redrive carries it out again.
    EffectMarked(Uuid, tirage_core::codes::Effect),
    /// A run of a photo started: lost with its end, nothing remains of it.
    RunStarted(Uuid),
    /// A run of a photo ended: its hold lapses, as a crashed run's does.
    RunEnded(Uuid),
}

/// A write run again, its answer ignored.
type Replayed = Pin<Box<dyn Future<Output = ()> + Send>>;
type Replay = Box<dyn Fn(Arc<MemoryStateStore>) -> Replayed + Send + Sync>;

/// One acknowledged write.
struct Entry {
    at: DateTime<Utc>,
    lost: Lost,
    replay: Replay,
}

/// The run's clock, or, while the journal runs again, the date of the call being replayed.
pub struct PinnedClock {
    base: Arc<dyn Clock>,
    pinned: Mutex<Option<DateTime<Utc>>>,
}

impl PinnedClock {
    fn pin(&self, at: Option<DateTime<Utc>>) {
        *self.pinned.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

impl Clock for PinnedClock {
    fn now(&self) -> DateTime<Utc> {
        let pinned = *self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        pinned.unwrap_or_else(|| self.base.now())
    }
}

pub struct Durable {
    clock: Arc<PinnedClock>,
    current: Mutex<Arc<MemoryStateStore>>,
    journal: Mutex<Vec<Entry>>,
    down: AtomicBool,
}

impl Durable {
    pub fn new(base: Arc<dyn Clock>) -> Durable {
        let clock = Arc::new(PinnedClock {
            base,
            pinned: Mutex::new(None),
        });
        Durable {
            current: Mutex::new(Arc::new(MemoryStateStore::with_clock(clock.clone()))),
            clock,
            journal: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
        }
    }

    fn journal(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The store, unless it is down (a refused connection: answered at once).
    fn store(&self) -> Result<Arc<MemoryStateStore>, StateError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StateError::Unavailable(
                "sim: the state store is restarting".to_owned(),
            ));
        }
        Ok(self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    /// A call that changes nothing.
    async fn read<T, Fut>(
        &self,
        call: impl FnOnce(Arc<MemoryStateStore>) -> Fut,
    ) -> Result<T, StateError>
    where
        Fut: Future<Output = Result<T, StateError>>,
    {
        call(self.store()?).await
    }

    /// A call that may change something: once acknowledged, it is journaled with what its
    /// loss would mean (`lost`, asked of its answer).
    async fn write<T, F, Fut>(
        &self,
        call: F,
        lost: impl FnOnce(&T) -> Lost,
    ) -> Result<T, StateError>
    where
        F: Fn(Arc<MemoryStateStore>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, StateError>> + Send + 'static,
    {
        let result = call(self.store()?).await;
        let lost = match &result {
            Ok(answer) => lost(answer),
            // A refusal changed nothing; journaled anyway, as Redis runs every script.
            Err(_) => Lost::Nothing,
        };
        let replay: Replay = Box::new(move |store| {
            let call = call(store);
            Box::pin(async move {
                let _ = call.await;
            })
        });
        let at = self.clock.now();
        self.journal().push(Entry { at, lost, replay });
        result
    }

    /// Redis killed: from now on every call is refused, and the writes of the last `lose`
    /// (the AOF's unflushed second) are gone. Returns what they were, oldest first.
    pub fn crash(&self, lose: Duration) -> Vec<Lost> {
        self.down.store(true, Ordering::Relaxed);
        let since = self.clock.now() - chrono::Duration::from_std(lose).unwrap_or_default();
        let mut journal = self.journal();
        let keep = journal.partition_point(|e| e.at <= since);
        journal.drain(keep..).map(|e| e.lost).collect()
    }

    /// Redis started again on its AOF: a new store, rebuilt by running every kept write
    /// again at its own date, then serving.
    pub async fn restart(&self) {
        let store = Arc::new(MemoryStateStore::with_clock(self.clock.clone()));
        let replays: Vec<(DateTime<Utc>, Replayed)> = self
            .journal()
            .iter()
            .map(|e| (e.at, (e.replay)(store.clone())))
            .collect();
        for (at, replay) in replays {
            self.clock.pin(Some(at));
            replay.await;
        }
        self.clock.pin(None);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = store;
        self.down.store(false, Ordering::Relaxed);
    }
}
