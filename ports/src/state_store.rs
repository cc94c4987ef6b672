//! Sessions, batches, photos and counters (Redis in production, memory when embedded).
//! Every key expires: nothing here outlives its batch or session.
//!
//! The counting operations are atomic in every adapter (a Lua script in Redis, one lock in
//! memory): that is what turns at-least-once delivery into exactly-once batch counts.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::effects::Effects;
pub use crate::state_error::StateError;
use crate::upkeep::Upkeep;
use tirage_core::model::{Batch, PhotoOutcome, PhotoRecord};

/// A session. Its `id` is a digest of the bearer token, never the token itself, so the
/// store holds nothing a reader could replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A presigned upload handed out and not yet completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpload {
    pub photo_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoPage {
    pub photos: Vec<PhotoRecord>,
    /// Opaque; pass it back to get the next page. `None` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordResult {
    /// This call recorded the outcome and moved the counters. `completed_now` is true for
    /// exactly one caller per batch: the one whose update completed it.
    Recorded { batch: Batch, completed_now: bool },
    /// The photo already had an outcome (a redelivered job); nothing moved.
    AlreadyRecorded { batch: Batch },
    /// The batch exists but never registered this photo (a stray, replayed or forged job):
    /// nothing moved, and nothing of the batch's may be touched on its behalf.
    UnknownPhoto { batch: Batch },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseResult {
    pub batch: Batch,
    /// True when closing found every photo finished, so the close itself completed the batch.
    pub completed_now: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed { remaining: u32 },
    Limited { retry_after: Duration },
}

/// One request's authentication: see [`StateStore::authorize`].
#[derive(Debug, Clone, Copy)]
pub struct Authorize<'a> {
    /// The session id (the token's digest).
    pub session_id: &'a str,
    /// The session's sliding expiry, as for [`StateStore::touch_session`].
    pub ttl: Duration,
    /// Counts one hit on the session's own request counter, as [`StateStore::rate_limit`]
    /// would on [`session_rate_key`]; `None` counts nothing.
    pub rate: Option<SessionRate>,
    /// A batch to read along, as [`StateStore::get_batch`] would (the route's batch).
    pub batch: Option<Uuid>,
}

/// A session's own request limit: at most `limit` requests per `window`.
#[derive(Debug, Clone, Copy)]
pub struct SessionRate {
    pub limit: u32,
    pub window: Duration,
}

/// The rate-limit key of a session's own request counter. A store may keep that counter
/// beside the session instead (Redis does, in the session's cluster slot); either way no
/// other caller counts on it.
pub fn session_rate_key(session_id: &str) -> String {
    format!("session:{session_id}")
}

/// A live session, what its rate limit decided, and the batch asked for (`None` when it
/// does not exist or was not asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    pub session: Session,
    pub rate: RateDecision,
    pub batch: Option<Batch>,
}

/// Whom a new session counts against: see [`StateStore::put_session_capped`].
#[derive(Debug, Clone, Copy)]
pub struct SessionQuota<'a> {
    /// Who creates the session: the client address, as the API determined it.
    pub owner: &'a str,
    /// At most this many sessions created by `owner` within one session TTL; 0: no cap.
    pub max: u32,
}

/// See [`StateStore::watch_progress`]: ids of batches that changed.
pub type ProgressFeed = std::pin::Pin<Box<dyn futures::Stream<Item = Uuid> + Send>>;

#[async_trait]
pub trait StateStore: Upkeep + Effects + Send + Sync + 'static {
    /// Proves the store answers; used by `/readyz`.
    async fn ping(&self) -> Result<(), StateError>;

    /// Stores a new session for `ttl`.
    async fn put_session(&self, session: &Session, ttl: Duration) -> Result<(), StateError>;
    /// Stores a new session as [`StateStore::put_session`] does, unless `quota.owner`
    /// already created `quota.max` sessions within the last `ttl`: then `false`, and nothing
    /// is stored. Counting and storing are one atomic step.
    async fn put_session_capped(
        &self,
        session: &Session,
        ttl: Duration,
        quota: SessionQuota<'_>,
    ) -> Result<bool, StateError>;
    /// The session with this id, its expiry pushed to now + `ttl` (sliding); `None` when it
    /// is unknown or expired.
    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError>;

    /// Stores a new batch; it and everything under it expire at `batch.expires_at`.
    async fn create_batch(&self, batch: &Batch) -> Result<(), StateError>;
    /// Creates `batch` as [`StateStore::create_batch`] does, unless its owner already has
    /// `max_open` batches that are open (neither closed, deleted nor expired): then `false`,
    /// and nothing is stored. 0: no cap.
    async fn create_batch_capped(&self, batch: &Batch, max_open: u32) -> Result<bool, StateError>;
    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError>;
    /// Registers queued photos, all or none: [`StateError::BatchClosed`] when the batch is
    /// not open, [`StateError::TooManyPhotos`] when `total` plus the batch's live pending
    /// uploads (other than these photos') would pass `limit`.
    async fn add_photos(
        &self,
        batch_id: Uuid,
        photos: &[PhotoRecord],
        limit: u64,
    ) -> Result<Batch, StateError>;
    /// Stops the batch accepting photos. Idempotent.
    async fn close_batch(&self, batch_id: Uuid) -> Result<CloseResult, StateError>;
    /// Records a photo's outcome once: a second call for the same photo changes nothing.
    async fn record_outcome(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        outcome: &PhotoOutcome,
    ) -> Result<RecordResult, StateError>;
    async fn get_photo(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PhotoRecord>, StateError>;
    /// How many runs of `photo_id` at delivery `attempt` were started before now. A run ends
    /// by recording the photo's outcome or by moving the job to its next attempt, so every
    /// earlier run at the same attempt is one that never ended: a worker died running it.
    /// 0 when the batch or photo is unknown.
    async fn runs_started(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        attempt: u32,
    ) -> Result<u32, StateError>;
    /// Counts one more run of `photo_id` at `attempt`, taken right before the work that can
    /// bring a worker down, and returns the runs of that attempt started before this one. A
    /// run at a new attempt starts the count again.
    async fn start_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        attempt: u32,
    ) -> Result<u32, StateError>;
    /// Photos in the order they were added, at most `limit` (clamped to 1..=1000) from
    /// `cursor`. [`StateError::NotFound`] when the batch does not exist or the cursor does
    /// not parse.
    async fn list_photos(
        &self,
        batch_id: Uuid,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PhotoPage, StateError>;
    /// Removes the batch and everything recorded under it. Idempotent.
    async fn delete_batch(&self, batch_id: Uuid) -> Result<(), StateError>;

    /// Remembers presigned uploads until they are completed or expire, all or none:
    /// [`StateError::BatchClosed`] when the batch is not open, [`StateError::TooManyPhotos`]
    /// when its photos plus its live (unexpired) pending uploads plus these would pass
    /// `limit`, [`StateError::NotFound`] when it does not exist.
    async fn put_pending_uploads(
        &self,
        batch_id: Uuid,
        uploads: &[PendingUpload],
        limit: u64,
    ) -> Result<(), StateError>;
    /// Remembers a presigned upload until it is completed or expires, counted against no
    /// limit (a ticket handed back after a failed `complete`).
    async fn put_pending_upload(
        &self,
        batch_id: Uuid,
        upload: &PendingUpload,
    ) -> Result<(), StateError>;
    /// Removes and returns a pending upload; `None` when unknown (or already taken).
    async fn take_pending_upload(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PendingUpload>, StateError>;

    /// Counts one hit against `key` in a fixed window of `window`; limited past `limit`.
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError>;

    /// Announcements of progress, from now on: the id of every batch whose counters or
    /// state changed (photos added, an outcome recorded, closed, deleted), as each change
    /// is stored. Every adapter announces its own writes, so callers of the writing methods
    /// do nothing. One feed per process is enough (the API fans it out to its event
    /// streams). The feed ends when the subscription is lost (a connection dropped, a
    /// reader fell behind): announcements may have been missed, so the caller re-reads what
    /// it watches and subscribes again.
    async fn watch_progress(&self) -> Result<ProgressFeed, StateError>;

    /// Opens (or renews) the lease of event stream `stream_id` of session `session_id`
    /// until now + `lease`. False, with nothing stored, when the session already holds
    /// `limit` live leases: the cap holds across every API replica. Leases of streams whose
    /// replica died lapse by themselves.
    async fn open_stream(
        &self,
        session_id: &str,
        stream_id: Uuid,
        limit: u32,
        lease: Duration,
    ) -> Result<bool, StateError>;
    /// Ends the lease of `stream_id`; ending an unknown lease succeeds.
    async fn close_stream(&self, session_id: &str, stream_id: Uuid) -> Result<(), StateError>;

    /// Everything a request needs before its handler runs, as one operation (one round trip
    /// in Redis, where every API request starts): the session slid by `ttl`, one hit
    /// counted, and the route's batch read. `None`, with nothing counted, when the session
    /// is unknown or expired.
    async fn authorize(&self, request: &Authorize<'_>) -> Result<Option<Authorized>, StateError> {
        let Some(session) = self.touch_session(request.session_id, request.ttl).await? else {
            return Ok(None);
        };
        let rate = match request.rate {
            Some(r) => {
                let key = session_rate_key(request.session_id);
                self.rate_limit(&key, r.limit, r.window).await?
            }
            None => RateDecision::Allowed {
                remaining: u32::MAX,
            },
        };
        let batch = match request.batch {
            Some(id) => self.get_batch(id).await?,
            None => None,
        };
        Ok(Some(Authorized {
            session,
            rate,
            batch,
        }))
    }
}
