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
mod upkeep;

use super::clock::{Clock, SystemClock};
use super::records::page_bounds;
use tirage_core::codes::Effect;
use tirage_core::model::{Batch, PhotoOutcome, PhotoRecord};
use tirage_ports::state_store::{
    CloseResult, PendingUpload, PhotoPage, ProgressFeed, RateDecision, RecordResult, Session,
    SessionQuota, StateError, StateStore,
};
use tirage_ports::upkeep::ConsumedMark;

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
    /// Photo → (attempt, runs started at that attempt): see [`StateStore::start_run`].
    runs: HashMap<Uuid, (u32, u32)>,
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
    /// Session → its event streams' lease expiries (see [`StateStore::open_stream`]).
    streams: HashMap<String, HashMap<Uuid, DateTime<Utc>>>,
    batches: HashMap<Uuid, BatchEntry>,
    rates: HashMap<String, RateWindow>,
    /// Client address → until when each session it created counts against it (`caps.rs`).
    creators: HashMap<String, Vec<DateTime<Utc>>>,
    /// Every batch created and not yet forgotten, with its expiry (`upkeep.rs`).
    index: HashMap<Uuid, DateTime<Utc>>,
    /// Lease name → (holder, until when) (`upkeep.rs`).
    leases: HashMap<String, (String, DateTime<Utc>)>,
    /// How far workers have taken resize jobs (`upkeep.rs`).
    consumed_mark: Option<ConsumedMark>,
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
        }
    }
}

/// In-memory state for standalone mode and fast tests.
pub struct MemoryStateStore {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
    /// Progress announcements ([`StateStore::watch_progress`]), the in-process pub/sub.
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

    async fn put_session(&self, session: &Session, ttl: Duration) -> Result<(), StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let mut stored = session.clone();
        stored.expires_at = after(now, ttl);
        inner.sessions.insert(session.id.clone(), stored);
        inner.wrote(now);
        Ok(())
    }

    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        match inner.sessions.get_mut(id) {
            Some(session) if session.expires_at > now => {
                session.expires_at = after(now, ttl);
                Ok(Some(session.clone()))
            }
            Some(_) => {
                inner.sessions.remove(id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put_session_capped(
        &self,
        session: &Session,
        ttl: Duration,
        quota: SessionQuota<'_>,
    ) -> Result<bool, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let stored = inner.put_session_capped(session, ttl, quota, now);
        inner.wrote(now);
        Ok(stored)
    }

    async fn create_batch(&self, batch: &Batch) -> Result<(), StateError> {
        let now = self.clock.now();
        self.lock().insert_batch(batch, now);
        Ok(())
    }

    async fn create_batch_capped(&self, batch: &Batch, max_open: u32) -> Result<bool, StateError> {
        let now = self.clock.now();
        Ok(caps::create_capped(&mut self.lock(), batch, max_open, now))
    }

    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError> {
        let now = self.clock.now();
        Ok(self.lock().batch(batch_id, now).map(|e| e.batch.clone()))
    }

    async fn add_photos(
        &self,
        batch_id: Uuid,
        photos: &[PhotoRecord],
        limit: u64,
    ) -> Result<Batch, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        let batch = entry.add(photos, limit, now)?;
        inner.wrote(now);
        self.announce(batch_id);
        Ok(batch)
    }

    async fn close_batch(&self, batch_id: Uuid) -> Result<CloseResult, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        let closed = entry.close();
        self.announce(batch_id);
        Ok(closed)
    }

    async fn record_outcome(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        outcome: &PhotoOutcome,
    ) -> Result<RecordResult, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        let result = entry.record(photo_id, outcome);
        if matches!(result, RecordResult::Recorded { .. }) {
            inner.wrote(now);
            self.announce(batch_id);
        }
        Ok(result)
    }

    async fn get_photo(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PhotoRecord>, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        Ok(inner
            .batch(batch_id, now)
            .and_then(|e| e.photos.get(&photo_id).cloned()))
    }

    async fn runs_started(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        attempt: u32,
    ) -> Result<u32, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        Ok(inner
            .batch(batch_id, now)
            .and_then(|e| e.runs.get(&photo_id))
            .map_or(0, |&(at, runs)| if at == attempt { runs } else { 0 }))
    }

    async fn start_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        attempt: u32,
    ) -> Result<u32, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        let runs = entry.runs.entry(photo_id).or_insert((attempt, 0));
        if runs.0 != attempt {
            *runs = (attempt, 0);
        }
        let before = runs.1;
        runs.1 = before.saturating_add(1);
        inner.wrote(now);
        Ok(before)
    }

    async fn list_photos(
        &self,
        batch_id: Uuid,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PhotoPage, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        let (start, end) = page_bounds(cursor, limit)?;
        let end = end.min(entry.order.len());
        let photos = entry
            .order
            .get(start.min(end)..end)
            .unwrap_or_default()
            .iter()
            .filter_map(|id| entry.photos.get(id).cloned())
            .collect();
        Ok(PhotoPage {
            photos,
            next_cursor: (end < entry.order.len()).then(|| end.to_string()),
        })
    }

    async fn delete_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        self.lock().batches.remove(&batch_id);
        self.announce(batch_id);
        Ok(())
    }

    async fn put_pending_uploads(
        &self,
        batch_id: Uuid,
        uploads: &[PendingUpload],
        limit: u64,
    ) -> Result<(), StateError> {
        let now = self.clock.now();
        self.lock()
            .put_pending_capped(batch_id, uploads, Some(limit), now)
    }

    async fn put_pending_upload(
        &self,
        batch_id: Uuid,
        upload: &PendingUpload,
    ) -> Result<(), StateError> {
        let now = self.clock.now();
        self.lock()
            .put_pending_capped(batch_id, std::slice::from_ref(upload), None, now)
    }

    async fn take_pending_upload(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PendingUpload>, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        Ok(inner
            .batch(batch_id, now)
            .and_then(|e| e.pending.remove(&photo_id))
            .filter(|u| u.expires_at > now))
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let decision = inner.count_request(key, limit, window, now);
        inner.wrote(now);
        Ok(decision)
    }

    async fn watch_progress(&self) -> Result<ProgressFeed, StateError> {
        let receiver = self.progress.subscribe();
        // Ends when the reader lagged (announcements were dropped) or the store is gone.
        let feed = futures::stream::unfold(receiver, |mut receiver| async move {
            let batch_id = receiver.recv().await.ok()?;
            Some((batch_id, receiver))
        });
        Ok(Box::pin(feed))
    }

    async fn open_stream(
        &self,
        session_id: &str,
        stream_id: Uuid,
        limit: u32,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let opened = inner.open_stream(session_id, stream_id, limit, after(now, lease), now);
        if opened {
            inner.wrote(now);
        }
        Ok(opened)
    }

    async fn close_stream(&self, session_id: &str, stream_id: Uuid) -> Result<(), StateError> {
        let mut inner = self.lock();
        if let Some(leases) = inner.streams.get_mut(session_id) {
            leases.remove(&stream_id);
            if leases.is_empty() {
                inner.streams.remove(session_id);
            }
        }
        Ok(())
    }
}
