//! What the reconciler needs from the state store, beside what requests and jobs use: a
//! lease so that one reconciler runs at a time, an index of every batch by expiry (to remove
//! an expired batch's objects), the smaller index of batches not yet settled (to find the
//! stalled ones without reading every batch of the last two days), and a per-batch watch
//! that tells how long a batch has shown no progress. Every [`StateStore`] provides it.
//!
//! [`StateStore`]: crate::StateStore

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::state_error::StateError;

/// A batch as the index knows it: created once, listed until forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedBatch {
    pub id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// How far workers have taken resize jobs (`Upkeep::advance_consumed_mark`): the reconciler
/// tells a batch that waits behind a backlog from one whose jobs were lost with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumedMark {
    /// The latest publish time of a job a worker has taken: a job published before it has
    /// been taken (and, if its photo is still queued with nothing in flight, lost); one
    /// published after may still be waiting.
    pub through: DateTime<Utc>,
    /// When a worker last reported taking a job: while workers keep taking jobs, one the
    /// queue has handed out may still be held, not yet started.
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait Upkeep: Send + Sync + 'static {
    /// Takes the lease `name` for `holder`, or renews it when `holder` has it already, for
    /// `ttl`. False while another holder has it.
    async fn take_lease(&self, name: &str, holder: &str, ttl: Duration)
    -> Result<bool, StateError>;

    /// Batches created and not yet forgotten, soonest expiry first: at most `limit` from
    /// `offset`. Creating a batch indexes it; deleting it does not (its objects are removed
    /// once more when it expires, in case the deletion stopped halfway).
    async fn indexed_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError>;

    /// Batches not yet settled, soonest expiry first: at most `limit` from `offset`. Creating
    /// a batch lists it here too, until [`Upkeep::settle_batch`] or
    /// [`Upkeep::forget_batch`]; settled batches need nothing more than their sweep, so a pass
    /// costs what is in flight, not everything kept.
    async fn unsettled_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError>;

    /// Takes a batch off the unsettled list: it is completed with its effects done, or
    /// deleted. It stays in the index until its sweep. Idempotent.
    async fn settle_batch(&self, batch_id: Uuid) -> Result<(), StateError>;

    /// Drops a batch from the index and the unsettled list, and gives back the bytes charged
    /// under it ([`crate::Storage`]): its objects are gone. Idempotent.
    async fn forget_batch(&self, batch_id: Uuid) -> Result<(), StateError>;

    /// Brings the sweep of an indexed batch forward to `at`: its index entry then lists it
    /// as expiring at `at`, so the reconciler removes its objects from then on. For a
    /// deleted batch, whose upload tickets (presigned PUTs, which cannot be revoked) may
    /// still write objects under it until they lapse. Only ever earlier; a batch not in the
    /// index stays out of it.
    async fn sweep_batch_at(&self, batch_id: Uuid, at: DateTime<Utc>) -> Result<(), StateError>;

    /// Gives a queued record back to every photo the batch counts that has neither a
    /// record nor an outcome (its registration was lost), named by its id; returns them.
    /// Their jobs are the caller's to publish again.
    async fn restore_lost_photos(&self, batch_id: Uuid) -> Result<Vec<Uuid>, StateError>;

    /// Raises the consumed mark: `through` to `published_at` (of resize jobs a worker took)
    /// and `at` to `taken_at`, each only when later than what is stored (workers report in
    /// any order). Kept at least as long as a batch lives.
    async fn advance_consumed_mark(
        &self,
        published_at: DateTime<Utc>,
        taken_at: DateTime<Utc>,
    ) -> Result<(), StateError>;

    /// The consumed mark; `None` before any job was taken.
    async fn consumed_mark(&self) -> Result<Option<ConsumedMark>, StateError>;

    /// Since when the batch has shown `marker` (a digest of its progress that the caller
    /// makes): when the stored marker differs, or `restart` is set, stores `marker` with
    /// `now` and returns `now`. `None` when the batch does not exist; the watch goes with
    /// the batch.
    async fn unchanged_since(
        &self,
        batch_id: Uuid,
        marker: &str,
        now: DateTime<Utc>,
        restart: bool,
    ) -> Result<Option<DateTime<Utc>>, StateError>;
}
