//! The embedded [`StateStore`]: everything in one process's memory behind one lock, with the
//! same expiry, counting and exactly-once rules as the Redis adapter. Expired entries are
//! dropped lazily when touched, plus a periodic sweep so memory does not grow forever.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use uuid::Uuid;

mod batches;
mod caps;
mod effects;
mod expiry_index;
mod runs;
mod sessions;
mod storage;
mod store;
mod upkeep;

use crate::clock::{Clock, SystemClock};
use tirage_core::codes::Effect;
use tirage_core::model::{Batch, PhotoRecord};
use tirage_ports::upkeep::ConsumedMark;
use tirage_ports::{PendingUpload, Progress, ProgressFeed, Session, StateError, StateStore};

/// Writes between two sweeps of expired entries.
const SWEEP_EVERY: u64 = 1024;

struct BatchEntry {
    batch: Batch,
    order: Vec<Uuid>,
    photos: HashMap<Uuid, PhotoRecord>,
    pending: HashMap<Uuid, PendingUpload>,
    /// Effects done (`effects.rs`).
    effects: HashSet<Effect>,
    /// Effect → when its handler claimed it, or last renewed the claim (`effects.rs`).
    claims: HashMap<Effect, DateTime<Utc>>,
    /// Photo → its crashed runs and the run holding it (`runs.rs`).
    runs: HashMap<Uuid, runs::RunRecord>,
    /// The reconciler's watch: the marker last seen and since when (`upkeep.rs`).
    watch: Option<(String, DateTime<Utc>)>,
}

struct RateWindow {
    count: u32,
    ends_at: DateTime<Utc>,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    /// Session → its event streams' lease expiries (see [`ClientLimits::open_stream`]).
    streams: HashMap<String, HashMap<Uuid, DateTime<Utc>>>,
    batches: HashMap<Uuid, BatchEntry>,
    rates: HashMap<String, RateWindow>,
    /// Client address → until when each session it created counts against it (`caps.rs`).
    creators: HashMap<String, Vec<DateTime<Utc>>>,
    /// Every batch created and not yet forgotten, with its expiry (`upkeep.rs`).
    index: expiry_index::ExpiryIndex,
    /// The batches of `index` not yet settled (`upkeep.rs`).
    unsettled: expiry_index::ExpiryIndex,
    /// Lease name → (holder, until when) (`upkeep.rs`).
    leases: HashMap<String, (String, DateTime<Utc>)>,
    /// How far workers have taken resize jobs (`upkeep.rs`).
    consumed_mark: Option<ConsumedMark>,
    /// Bytes kept per session and client address, and per batch (`storage.rs`).
    storage: storage::Ledger,
    writes: u64,
}

impl Inner {
    /// The live batch, dropping it first when it has expired.
    fn batch(&mut self, id: Uuid, now: DateTime<Utc>) -> Option<&mut BatchEntry> {
        if self
            .batches
            .get(&id)
            .is_some_and(|entry| entry.batch.expires_at <= now)
        {
            self.batches.remove(&id);
        }
        self.batches.get_mut(&id)
    }

    fn insert_batch(&mut self, batch: &Batch, now: DateTime<Utc>) {
        self.batches.insert(
            batch.id,
            BatchEntry {
                batch: batch.clone(),
                order: Vec::new(),
                photos: HashMap::new(),
                pending: HashMap::new(),
                effects: HashSet::new(),
                claims: HashMap::new(),
                runs: HashMap::new(),
                watch: None,
            },
        );
        self.index.insert(batch.id, batch.expires_at);
        self.unsettled.insert(batch.id, batch.expires_at);
        self.wrote(now);
    }

    fn wrote(&mut self, now: DateTime<Utc>) {
        self.writes += 1;
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.sessions.retain(|_, s| s.expires_at > now);
            self.batches.retain(|_, b| b.batch.expires_at > now);
            self.rates.retain(|_, r| r.ends_at > now);
            self.creators.retain(|_, counted| {
                counted.retain(|until| *until > now);
                !counted.is_empty()
            });
            self.streams
                .retain(|_, leases| leases.values().any(|until| *until > now));
            self.storage.prune(now);
        }
    }
}

/// In-memory state for standalone mode and fast tests.
pub struct MemoryStateStore {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
    /// Progress announcements ([`Progress::watch_progress`]), the in-process pub/sub.
    progress: broadcast::Sender<Uuid>,
}

/// Announcements a slow feed reader may fall behind by before its feed ends (and it
/// re-reads everything it watches).
const PROGRESS_BACKLOG: usize = 4096;

impl Default for MemoryStateStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStateStore {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A store reading time from `clock` (tests pass the test kit's `ManualClock`).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryStateStore {
            inner: Mutex::new(Inner::default()),
            clock,
            progress: broadcast::channel(PROGRESS_BACKLOG).0,
        }
    }

    /// Announces that `batch_id` changed; without watchers there is no one to tell.
    fn announce(&self, batch_id: Uuid) {
        let _no_watchers = self.progress.send(batch_id);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing inside the lock panics, so a poisoned lock still holds consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn after(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn ping(&self) -> Result<(), StateError> {
        Ok(())
    }
}

#[async_trait]
impl Progress for MemoryStateStore {
    async fn watch_progress(&self) -> Result<ProgressFeed, StateError> {
        let receiver = self.progress.subscribe();
        // Ends when the reader lagged (announcements were dropped) or the store is gone.
        let feed = futures::stream::unfold(receiver, |mut receiver| async move {
            let batch_id = receiver.recv().await.ok()?;
            Some((batch_id, receiver))
        });
        Ok(Box::pin(feed))
    }
}
