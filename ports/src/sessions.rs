//! Sessions, and the per-client counters that bound what a client may do: request rates
//! and event-stream leases. Every [`StateStore`] provides them.
//!
//! [`StateStore`]: crate::StateStore

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tirage_core::model::Batch;
use uuid::Uuid;

use crate::cap::Cap;
use crate::state_error::StateError;

/// A session. Its `id` is a digest of the bearer token, never the token itself, so the
/// store holds nothing a reader could replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Whom a new session counts against: see [`Sessions::put_session`].
#[derive(Debug, Clone, Copy)]
pub struct SessionQuota<'a> {
    /// Who creates the session: the client address, as the API determined it.
    pub owner: &'a str,
    /// At most this many sessions created by `owner` within one session TTL.
    pub max: Cap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed { remaining: u32 },
    Limited { retry_after: Duration },
}

/// One request's authentication: see [`StateStore::authorize`].
///
/// [`StateStore::authorize`]: crate::StateStore::authorize
#[derive(Debug, Clone, Copy)]
pub struct Authorize<'a> {
    /// The session id (the token's digest).
    pub session_id: &'a str,
    /// The session's sliding expiry, as for [`Sessions::touch_session`].
    pub ttl: Duration,
    /// Counts one hit on the session's own request counter, as [`ClientLimits::rate_limit`]
    /// would on [`session_rate_key`]; `None` counts nothing.
    pub rate: Option<SessionRate>,
    /// A batch to read along, as `Batches::get_batch` would (the route's batch).
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

#[async_trait]
pub trait Sessions: Send + Sync + 'static {
    /// Stores a new session for `ttl`, unless `quota` is given and `quota.owner` already
    /// created `quota.max` sessions within the last `ttl`: then `false`, and nothing is
    /// stored. Counting and storing are one atomic step.
    async fn put_session(
        &self,
        session: &Session,
        ttl: Duration,
        quota: Option<SessionQuota<'_>>,
    ) -> Result<bool, StateError>;
    /// The session with this id, its expiry pushed to now + `ttl` (sliding); `None` when it
    /// is unknown or expired.
    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError>;
}

#[async_trait]
pub trait ClientLimits: Send + Sync + 'static {
    /// Counts one hit against `key` in a fixed window of `window`; limited past `limit`.
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError>;

    /// Counts `hits` more on the session's own request counter (the one
    /// [`StateStore::authorize`] counts one on), for a request that costs as much as that
    /// many; limited past `rate.limit`, as [`ClientLimits::rate_limit`] is.
    ///
    /// [`StateStore::authorize`]: crate::StateStore::authorize
    async fn charge_session_requests(
        &self,
        session_id: &str,
        hits: u32,
        rate: SessionRate,
    ) -> Result<RateDecision, StateError>;

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
}
