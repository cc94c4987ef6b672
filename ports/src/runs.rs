//! What a worker records about a photo's job: the one run that holds the photo's engine work
//! at a time (so a copy of a job being run is told from a run whose worker died) and the
//! photo's one outcome. Every [`StateStore`] provides it.
//!
//! A run *holds* the photo from right before the engine starts until the engine returns,
//! renewing its hold while the engine works. A hold that lapses without being ended is a run
//! whose worker died (killed, out of memory, a crashing decoder): the next run to start counts
//! it as crashed. A delivery that finds another run's live hold is a copy (a duplicate
//! publish, the reconciler's redrive): it waits, and is never counted as a crash.
//!
//! [`StateStore`]: crate::StateStore

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tirage_core::model::{Batch, PhotoOutcome};
use uuid::Uuid;

use crate::state_error::StateError;

/// One run's hold on a photo: the token naming the run (fresh for every run), the caller's
/// time, and how long from then the hold lasts unless renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunHold {
    pub token: Uuid,
    pub now: DateTime<Utc>,
    pub lasts: Duration,
}

impl RunHold {
    /// Until when the hold lasts, as Unix milliseconds.
    pub fn until_ms(&self) -> i64 {
        let lasts = i64::try_from(self.lasts.as_millis()).unwrap_or(i64::MAX);
        self.now.timestamp_millis().saturating_add(lasts)
    }
}

/// What [`Runs::start_run`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStart {
    /// The caller's run holds the photo now; `crashed` runs before it ended with their
    /// worker dying (their hold lapsed unended).
    Started { crashed: u32 },
    /// Another run holds the photo and its hold is live: this delivery is a copy of a job
    /// being run right now.
    Held,
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

#[async_trait]
pub trait Runs: Send + Sync + 'static {
    /// Records a photo's outcome once: a second call for the same photo changes nothing.
    async fn record_outcome(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        outcome: &PhotoOutcome,
    ) -> Result<RecordResult, StateError>;
    /// How many runs of `photo_id` ended with their worker dying, as of `now`: those counted
    /// before, plus a hold that has lapsed unended. 0 when the batch or photo is unknown.
    async fn crashed_runs(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u32, StateError>;
    /// Takes the photo's hold for the caller's run, right before the work that can bring a
    /// worker down. A lapsed hold of another run counts as one more crashed run; a live one
    /// is left alone (`Held`). `NotFound` when the batch is gone.
    async fn start_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<RunStart, StateError>;
    /// Extends the caller's hold to `hold.now + hold.lasts`; false when the photo is no
    /// longer held by `hold.token` (it lapsed and another run took it). `NotFound` when the
    /// batch is gone.
    async fn renew_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<bool, StateError>;
    /// Ends the run named `token`: its hold is dropped, so no later run takes it for a
    /// crash. Nothing changes when another run holds the photo. `NotFound` when the batch
    /// is gone.
    async fn end_run(&self, batch_id: Uuid, photo_id: Uuid, token: Uuid) -> Result<(), StateError>;
}
