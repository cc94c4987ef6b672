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

use crate::codes::Effect;
use crate::model::{Batch, PhotoOutcome, PhotoRecord};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The store did not answer: worth retrying later.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// The batch (or photo) does not exist, or has expired.
    #[error("not found")]
    NotFound,
    /// The batch no longer accepts photos.
    #[error("batch is closed")]
    BatchClosed,
    #[error("batch would exceed its limit of {limit} photos")]
    TooManyPhotos { limit: u64 },
    /// Stored data did not parse: a bug or a foreign writer, never the user's fault.
    #[error("stored state is corrupt: {0}")]
    Corrupt(String),
}

impl StateError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StateError::Unavailable(_))
    }
}

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
    /// Counts one hit, as [`StateStore::rate_limit`] would; `None` counts nothing.
    pub rate: Option<RateLimit<'a>>,
    /// A batch to read along, as [`StateStore::get_batch`] would (the route's batch).
    pub batch: Option<Uuid>,
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimit<'a> {
    pub key: &'a str,
    pub limit: u32,
    pub window: Duration,
}

/// A live session, what its rate limit decided, and the batch asked for (`None` when it
/// does not exist or was not asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    pub session: Session,
    pub rate: RateDecision,
    pub batch: Option<Batch>,
}

/// The stored name of `effect`'s claim marker, beside the effect's own ([`Effect::as_str`]).
pub fn claim_field(effect: Effect) -> String {
    format!("{}_claimed", effect.as_str())
}

#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// Proves the store answers; used by `/readyz`.
    async fn ping(&self) -> Result<(), StateError>;

    /// Stores a new session for `ttl`.
    async fn put_session(&self, session: &Session, ttl: Duration) -> Result<(), StateError>;
    /// The session with this id, its expiry pushed to now + `ttl` (sliding); `None` when it
    /// is unknown or expired.
    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError>;

    /// Stores a new batch; it and everything under it expire at `batch.expires_at`.
    async fn create_batch(&self, batch: &Batch) -> Result<(), StateError>;
    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError>;
    /// Registers queued photos, all or none: [`StateError::BatchClosed`] when the batch is
    /// not open, [`StateError::TooManyPhotos`] when `total` would pass `limit`.
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

    /// Remembers a presigned upload until it is completed or expires.
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

    /// Marks one side effect of a completed batch as done (stored under
    /// [`Effect::as_str`]); true for the first caller only. Call it after the effect
    /// succeeded.
    async fn mark_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError>;
    async fn is_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError>;
    /// Marks that a handler started `effect` (a marker of its own next to the effect's,
    /// stored as [`claim_field`]); true for the first claimer only.
    async fn claim_effect(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError>;

    /// Counts one hit against `key` in a fixed window of `window`; limited past `limit`.
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError>;

    /// Everything a request needs before its handler runs, as one operation (one round trip
    /// in Redis, where every API request starts): the session slid by `ttl`, one hit
    /// counted, and the route's batch read. `None`, with nothing counted, when the session
    /// is unknown or expired.
    async fn authorize(&self, request: &Authorize<'_>) -> Result<Option<Authorized>, StateError> {
        let Some(session) = self.touch_session(request.session_id, request.ttl).await? else {
            return Ok(None);
        };
        let rate = match request.rate {
            Some(r) => self.rate_limit(r.key, r.limit, r.window).await?,
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
