//! The side effects of a completed batch: the `batch.completed` event, published here, and
//! the callback, handed to its own work item ([`crate::callback`]) so that a receiver that
//! is slow or silent never keeps this delivery, or any other, waiting.
//!
//! Several `FinalizeBatch` messages may exist for one batch (a resize job redelivered after
//! its batch completed publishes another one). Each effect is therefore claimed in the
//! state store before it runs and marked done after it succeeded:
//! - done already → skip;
//! - claimed by someone else on a first delivery → skip (they are running it now);
//! - claimed, but this message was redelivered or retried → the claimer may have been us
//!   before a crash, so run it again (at-least-once wins over losing the effect).

use chrono::{DateTime, Utc};
use tirage_core::codes::{Effect, FailureCode};
use tirage_core::{Batch, BatchCompleted, BatchState};
use tirage_ports::WorkItem;
use tracing::{info, warn};
use uuid::Uuid;

use crate::context::Ctx;
use crate::failure::Failure;
use crate::metrics::JobOutcome;

/// Runs the side effects of a completed batch that are not done yet. `maybe_ours` is true
/// when this message was delivered before (see the module's doc). Returns the outcome label:
/// `done`, `duplicate` (nothing left to do) or `dropped` (the batch is not completed).
pub(crate) async fn run(
    ctx: &Ctx,
    batch_id: Uuid,
    maybe_ours: bool,
) -> Result<JobOutcome, Failure> {
    let Some(batch) = ctx
        .io("get batch", ctx.ports.state.get_batch(batch_id))
        .await?
    else {
        return Err(Failure::Gone);
    };
    if batch.state != BatchState::Completed {
        warn!(state = ?batch.state, "finalisation requested for a batch that is not completed");
        return Ok(JobOutcome::Dropped);
    }
    // Both effects are claimed before either runs, so the event and the callback carry the
    // same `completed_at`: a concurrent duplicate cannot slip in between with another.
    let completed_at = Utc::now();
    let run_event = claim(ctx, batch_id, Effect::Event, maybe_ours).await?;
    let callback =
        batch.callback_url.is_some() && claim(ctx, batch_id, Effect::Callback, maybe_ours).await?;
    if run_event {
        let body = completed_json(&batch, completed_at)?;
        let publish = ctx.ports.queue.publish_event(BatchCompleted::EVENT, &body);
        ctx.io("publish event", publish).await?;
        ctx.metrics.events_published.inc();
        mark_done(ctx, batch_id, Effect::Event).await?;
        info!("batch.completed event published");
    }
    if callback {
        // Marked done by the callback's own delivery, once delivered, refused or given up.
        let item = WorkItem::Callback {
            batch_id,
            completed_at,
        };
        ctx.io("publish callback", ctx.ports.queue.publish(&item))
            .await?;
    }
    Ok(if run_event || callback {
        JobOutcome::Done
    } else {
        JobOutcome::Duplicate
    })
}

async fn mark_done(ctx: &Ctx, batch_id: Uuid, effect: Effect) -> Result<bool, Failure> {
    let mark = ctx.ports.state.mark_effect_done(batch_id, effect);
    ctx.io(&format!("mark {effect}"), mark).await
}

/// True when this handler should run `effect` now.
async fn claim(
    ctx: &Ctx,
    batch_id: Uuid,
    effect: Effect,
    maybe_ours: bool,
) -> Result<bool, Failure> {
    let state = &ctx.ports.state;
    let done = state.is_effect_done(batch_id, effect);
    if ctx.io("effect done?", done).await? {
        return Ok(false);
    }
    // The claim is a marker of its own next to the effect's, in the same per-batch record.
    let first = state.claim_effect(batch_id, effect);
    Ok(ctx.io("claim effect", first).await? || maybe_ours)
}

/// The event body: the same bytes go to the exchange and to the callback.
pub(crate) fn completed_json(
    batch: &Batch,
    completed_at: DateTime<Utc>,
) -> Result<Vec<u8>, Failure> {
    let event = BatchCompleted {
        event: BatchCompleted::EVENT.into(),
        batch_id: batch.id,
        total: batch.total,
        done: batch.done,
        failed: batch.failed,
        created_at: batch.created_at,
        completed_at,
    };
    serde_json::to_vec(&event)
        .map_err(|e| Failure::Permanent(FailureCode::InternalError, e.to_string()))
}
