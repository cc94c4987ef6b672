//! What travels on the job queue: the work items, the lanes they travel on, and how the
//! queue fails.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use tirage_core::model::ResizeJob;

/// A message on the work queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkItem {
    /// Resize one photo.
    Resize(ResizeJob),
    /// Run a completed batch's side effects (the `batch.completed` event, the callback).
    /// Published by whoever observes the batch completed; handled idempotently, so a
    /// duplicate is harmless.
    FinalizeBatch {
        batch_id: Uuid,
        /// Published by the reconciler for a batch whose effects stayed undone: a handler
        /// that claimed them died, so they run again even though claimed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        redrive: bool,
    },
    /// POST a completed batch's `batch.completed` body to its callback URL: one attempt per
    /// delivery, retried through the delay queue (never by waiting in a held delivery).
    /// Published by the finalisation that claimed the callback; `completed_at` is the one
    /// its event carried, so every attempt sends the same body.
    Callback {
        batch_id: Uuid,
        completed_at: DateTime<Utc>,
    },
}

impl WorkItem {
    /// The lane this item travels on.
    pub fn lane(&self) -> Lane {
        match self {
            WorkItem::Resize(_) => Lane::Resize,
            WorkItem::FinalizeBatch { .. } | WorkItem::Callback { .. } => Lane::Effects,
        }
    }

    /// The batch this item is for.
    pub fn batch_id(&self) -> Uuid {
        match self {
            WorkItem::Resize(job) => job.batch_id,
            WorkItem::FinalizeBatch { batch_id, .. } | WorkItem::Callback { batch_id, .. } => {
                *batch_id
            }
        }
    }
}

/// The queues work travels on, each consumed with its own bounded concurrency so that one
/// kind of work can never hold the capacity of the other: a callback receiver that never
/// answers occupies effect slots, never a resize slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// One photo's resize: CPU-bound, as many at once as the worker has CPU slots.
    Resize,
    /// A completed batch's side effects (event, callback): waiting on third parties.
    Effects,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Resize, Lane::Effects];

    /// The lane's name in queue names, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Resize => "resize",
            Lane::Effects => "effects",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The broker is unreachable or the channel died: worth retrying once it is back.
    #[error("job queue unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the message (negative publisher confirm).
    #[error("job queue refused the message: {0}")]
    Rejected(String),
}
