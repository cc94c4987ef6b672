//! The side effects of a completed batch: the `batch.completed` event, published here, and
//! the callback, handed to its own work item ([`crate::callback`]) so that a receiver that
//! is slow or silent never keeps this delivery, or any other, waiting.
//!
//! Several `FinalizeBatch` messages may exist for one batch (a resize job redelivered after
//! its batch completed publishes another one; the reconciler redrives a finalisation whose
//! effects stayed undone). Each effect is therefore claimed in the state store before it
//! runs and marked done after it succeeded:
//! - done already → skip;
//! - claimed, and the claim is fresh → another handler is running it (a callback's handler
//!   renews the claim at every attempt, [`crate::callback`]): this copy comes back later
//!   (through the delay queue) instead of being acked, and acks once the effect is done;
//! - claimed longer ago than [`claim_stale_after`] → its handler died: take it over.
//!
//! A handler that fails before its effect releases its claim and retries (unless it may
//! have handed the callback off: see [`run`]). Its retry can be
//! lost with its delivery (the channel died while the effect hung: the broker redelivered
//! the message to another worker, which found the claim fresh): that is why a copy that
//! finds a fresh claim waits rather than acks, so some copy always remains until the effect
//! is done. (Found by the simulator, `tirage-sim` seed 633.) Only a failure between the
//! effect and its mark (the state store lost in that instant) can run an effect twice, once
//! the claim has gone stale.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tirage_core::codes::{Effect, FailureCode};
use tirage_core::{Batch, BatchCompleted, BatchState};
use tirage_ports::WorkItem;
use tirage_runtime::telemetry::propagation;
use tracing::{info, warn};
use uuid::Uuid;

use crate::context::Ctx;
use crate::failure::Failure;
use crate::metrics::JobOutcome;
use crate::outcome::{EffectRun, Tries};
use crate::settings::HOST_CLOCK_SKEW;

/// Who runs an effect, as its claim says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// Done already: nothing to run.
    Done,
    /// This handler runs it now.
    Ours,
    /// Another handler's claim is fresh: it runs it.
    Elsewhere,
}

/// Runs the side effects of a completed batch that are not done yet (see the module's doc).
/// Settles `done`, `duplicate` (nothing left to do here) or `dropped` (the batch is not
/// completed); comes back later while another handler holds a fresh claim.
pub(crate) async fn run(ctx: &Ctx, batch_id: Uuid, tries: Tries) -> Result<EffectRun, Failure> {
    let Some(batch) = ctx
        .io("get batch", ctx.ports.state.get_batch(batch_id))
        .await?
    else {
        return Err(Failure::Gone);
    };
    if batch.state != BatchState::Completed {
        warn!(state = ?batch.state, "finalisation requested for a batch that is not completed");
        return Ok(EffectRun::Settled(JobOutcome::Dropped));
    }
    // Both effects are claimed before either runs, so the event and the callback carry the
    // same `completed_at`: a concurrent duplicate cannot slip in between with another.
    let completed_at = ctx.now();
    let event = claim(ctx, batch_id, Effect::Event).await?;
    if event == Claim::Elsewhere {
        // Its holder claimed the callback too, if it could: wait for both.
        return Ok(EffectRun::Wait(ctx.retry_delay(tries.attempt)));
    }
    let callback = match batch.callback_url {
        Some(_) => claim(ctx, batch_id, Effect::Callback).await?,
        None => Claim::Done,
    };
    let (run_event, run_callback) = (event == Claim::Ours, callback == Claim::Ours);
    if run_event {
        let body = completed_json(&batch, completed_at)?;
        let publish = ctx.ports.queue.publish_event(BatchCompleted::EVENT, &body);
        if let Err(failure) = ctx.io("publish event", publish).await {
            release(
                ctx,
                batch_id,
                &[
                    Some(Effect::Event),
                    run_callback.then_some(Effect::Callback),
                ],
            )
            .await;
            return Err(failure);
        }
        ctx.metrics.events_published.inc();
        let callback_held = run_callback.then_some(Effect::Callback);
        mark_done_after_effect(ctx, batch_id, Effect::Event, callback_held).await?;
        info!("batch.completed event published");
    }
    if run_callback {
        // Marked done by the callback's own delivery, once delivered, refused or given up.
        let item = WorkItem::Callback {
            batch_id,
            completed_at,
        };
        let trace = propagation::current();
        let publish = ctx.ports.queue.publish(&item, &trace);
        // On a failure the claim is kept: the item may have gone out all the same (its
        // confirm lost), and a released claim would let a copy hand off a second chain of
        // attempts, two POSTs (found by `tirage-sim`, seed 1145). If it did not go out, the
        // claim goes stale and a copy hands the callback off then.
        ctx.io("publish callback", publish).await?;
    }
    if callback == Claim::Elsewhere {
        // A live callback chain (or a finalisation about to hand one off): come back until
        // it is done, in case its handler loses its delivery.
        return Ok(EffectRun::Wait(ctx.retry_delay(tries.attempt)));
    }
    Ok(EffectRun::Settled(if run_event || run_callback {
        JobOutcome::Done
    } else {
        JobOutcome::Duplicate
    }))
}

/// Marks `effect` done once it has run. A failure here must not end the handler: its retry
/// (or, once the claim went stale, a copy) would run the effect again, and the event or the
/// callback would go out twice (found by the simulator with state-store faults, `tirage-sim`
/// seed 4). So it tries again with the job's backoff, renewing its claim between tries so
/// that no copy takes over, for up to `retry_for_ms`; only then is the failure returned,
/// the claim left to go stale. `also_held` are the other claims the handler holds and
/// renews meanwhile: a finalisation holds the callback's until it hands it off, and a
/// claim gone stale while the event's mark was retried let a copy hand off a second chain
/// of callback attempts (found by `tirage-sim`, seed 8525). Only a store that does not
/// answer is tried again: a batch that is gone has nothing left to mark.
pub(crate) async fn mark_done_after_effect(
    ctx: &Ctx,
    batch_id: Uuid,
    effect: Effect,
    also_held: Option<Effect>,
) -> Result<(), Failure> {
    let state = &ctx.ports.state;
    let budget = Duration::from_millis(ctx.settings.retry_for_ms);
    let mark = || state.mark_effect_done(batch_id, effect);
    let renew_claim = || async move {
        for held in std::iter::once(effect).chain(also_held) {
            let renew = state.renew_effect_claim(batch_id, held, ctx.now());
            if let Err(e) = ctx.io("renew claim", renew).await {
                warn!(reason = ?e, effect = %held, "could not renew a claim while marking");
            }
        }
    };
    let what = format!("mark {effect}");
    ctx.io_until(&what, budget, mark, renew_claim).await?;
    Ok(())
}

/// How old a claim must be for its handler to be taken for dead: half the reconciler's
/// stall threshold, so that the redrive the reconciler publishes after that threshold finds
/// a dead handler's claim stale, and far above the longest a live handler leaves its claim
/// unrenewed (a callback's longest backoff, 60 s, plus one attempt). Never less than a live
/// handler's effect may still land after the claim's date: its claim call and its effect
/// each take up to `io_timeout_ms`, and its clock may be [`HOST_CLOCK_SKEW`] behind the
/// taker's. (Found by the simulator, `tirage-sim` seed 17285: with a stall threshold of 6.6 s
/// the claim went stale at 3.3 s while its holder's event publish hung for 4.5 s within its
/// timeout, and the event went out twice.)
pub(crate) fn claim_stale_after(ctx: &Ctx) -> Duration {
    let half_stall = Duration::from_millis(ctx.settings.stall_after_ms / 2);
    let effect_may_land = ctx.settings.io_timeout().saturating_mul(2) + HOST_CLOCK_SKEW;
    half_stall.max(effect_may_land)
}

/// Who runs `effect`: nobody (done), this handler (claimed now), or another one.
async fn claim(ctx: &Ctx, batch_id: Uuid, effect: Effect) -> Result<Claim, Failure> {
    let state = &ctx.ports.state;
    let done = state.is_effect_done(batch_id, effect);
    if ctx.io("effect done?", done).await? {
        return Ok(Claim::Done);
    }
    let take = state.claim_effect(batch_id, effect, ctx.now(), claim_stale_after(ctx));
    Ok(if ctx.io("claim effect", take).await? {
        Claim::Ours
    } else {
        Claim::Elsewhere
    })
}

/// Drops this handler's claims before it retries; best effort: a claim left behind goes
/// stale, and the reconciler's redrive takes it over.
async fn release(ctx: &Ctx, batch_id: Uuid, effects: &[Option<Effect>]) {
    for effect in effects.iter().flatten() {
        let release = ctx.ports.state.release_effect_claim(batch_id, *effect);
        if let Err(e) = ctx.io("release claim", release).await {
            warn!(reason = ?e, %effect, "could not release an effect claim; it goes stale");
        }
    }
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
