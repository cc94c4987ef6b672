//! The one place that decides "this batch is complete: hand its finalisation to the
//! workers". Every caller that moves a batch's counters (closing it in the API, recording a
//! photo's outcome in the worker or after a failed enqueue in the API) asks here.

use crate::{JobQueue, QueueError, StateError, StateStore, TraceContext, WorkItem};
use tirage_core::codes::Effect;
use tirage_core::model::{Batch, BatchState};

#[derive(Debug, thiserror::Error)]
pub enum HandOffError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Publishes the batch's finalisation when this caller must: when its own call completed
/// the batch (`completed_now`), or when the batch is already completed but its completion
/// event is not done yet — the one who completed it may have died before publishing, and a
/// retried or redelivered call is then the only one left to do it. Finalisation is
/// idempotent, so a duplicate is harmless; a lost one would leave the batch without its
/// event and callback. `trace` is the caller's: the finalisation continues the trace of
/// what completed the batch. Returns whether it published.
pub async fn hand_off(
    state: &dyn StateStore,
    queue: &dyn JobQueue,
    batch: &Batch,
    completed_now: bool,
    trace: &TraceContext,
) -> Result<bool, HandOffError> {
    let must_publish = completed_now
        || (batch.state == BatchState::Completed
            && !state.is_effect_done(batch.id, Effect::Event).await?);
    if must_publish {
        queue
            .publish(
                &WorkItem::FinalizeBatch {
                    batch_id: batch.id,
                    redrive: false,
                },
                trace,
            )
            .await?;
    }
    Ok(must_publish)
}
