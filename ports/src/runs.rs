//! What a worker records about a photo's job: each run it starts (so a run that never ended
//! is told from a queued copy) and the photo's one outcome. Every [`StateStore`] provides it.
//!
//! [`StateStore`]: crate::StateStore

use async_trait::async_trait;
use tirage_core::model::{Batch, PhotoOutcome};
use uuid::Uuid;

use crate::state_error::StateError;

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

#[async_trait]
pub trait Runs: Send + Sync + 'static {
    /// Records a photo's outcome once: a second call for the same photo changes nothing.
    async fn record_outcome(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        outcome: &PhotoOutcome,
    ) -> Result<RecordResult, StateError>;
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
}
