//! A completed batch's callback: one signed POST per delivery of a `WorkItem::Callback`,
//! on the effects lane. A failed attempt goes back to the delay queue to be tried again
//! after a backoff, holding nothing while it waits; a host that already has
//! `callback_per_host` callbacks in flight from this worker gets its next one deferred the
//! same way, without an attempt. After `callback_retry_for_ms` of retries the callback is
//! given up. Either way it is then marked done, so no later delivery starts it over.

mod post;

use std::time::Duration;

use chrono::{DateTime, Utc};
use tirage_core::backoff::Backoff;
use tirage_core::codes::Effect;
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::callback_transport::CallbackAttempt;
use crate::context::Ctx;
use crate::failure::Failure;
use crate::finalize::{completed_json, mark_done_after_effect};
use crate::host_slots::host_of;
use crate::metrics::{CallbackOutcome, JobOutcome};
use crate::outcome::{EffectRun, Tries};
use post::post_once;

/// Runs one attempt of a batch's callback, unless it is done already.
pub(crate) async fn run(
    ctx: &Ctx,
    batch_id: Uuid,
    completed_at: DateTime<Utc>,
    tries: Tries,
) -> Result<EffectRun, Failure> {
    let state = &ctx.ports.state;
    let Some(batch) = ctx.io("get batch", state.get_batch(batch_id)).await? else {
        return Err(Failure::Gone);
    };
    let done = state.is_effect_done(batch_id, Effect::Callback);
    if ctx.io("effect done?", done).await? {
        return Ok(EffectRun::Settled(JobOutcome::Duplicate));
    }
    let Some(url) = batch.callback_url.as_deref() else {
        return Ok(EffectRun::Settled(JobOutcome::Dropped));
    };
    // This chain of attempts is alive: its claim stays fresh, so no redrive starts another.
    let renew = state.renew_effect_claim(batch_id, Effect::Callback, ctx.now());
    ctx.io("renew callback claim", renew).await?;
    let body = completed_json(&batch, completed_at)?;
    let host = host_of(url);
    let attempt = match ctx.callback_hosts.try_take(&host) {
        Some(_slot) => post_once(ctx, url, &body).await,
        None => {
            ctx.metrics.callback(CallbackOutcome::Deferred);
            return again_or_give_up(ctx, batch_id, tries, "its host is busy").await;
        }
    };
    match attempt {
        CallbackAttempt::Delivered => {
            info!(attempt = tries.attempt, "callback delivered");
            finish(ctx, batch_id, CallbackOutcome::Delivered).await
        }
        CallbackAttempt::Refused(reason) => {
            warn!(reason, "callback refused; not retried");
            finish(ctx, batch_id, CallbackOutcome::Refused).await
        }
        CallbackAttempt::Failed(reason) => again_or_give_up(ctx, batch_id, tries, &reason).await,
    }
}

/// Another attempt after the backoff while the callback's budget lasts; else given up.
async fn again_or_give_up(
    ctx: &Ctx,
    batch_id: Uuid,
    tries: Tries,
    reason: &str,
) -> Result<EffectRun, Failure> {
    let delay = backoff(ctx).delay_with(tries.attempt, ctx.seams.entropy.fraction());
    let budget = Duration::from_millis(ctx.settings.callback_retry_for_ms);
    let spent = tries.spent_now();
    if spent + delay >= budget {
        error!(attempt = tries.attempt, reason, "callback given up");
        return finish(ctx, batch_id, CallbackOutcome::GaveUp).await;
    }
    ctx.metrics.callback(CallbackOutcome::Retried);
    warn!(
        attempt = tries.attempt,
        reason,
        delay_ms = delay.as_millis() as u64,
        "callback not delivered; trying again later"
    );
    Ok(EffectRun::Retry(delay))
}

/// Marks the callback done — delivered, refused or given up alike: the retry budget is the
/// bound the contract promises, and a later delivery must not start it over.
async fn finish(ctx: &Ctx, batch_id: Uuid, outcome: CallbackOutcome) -> Result<EffectRun, Failure> {
    mark_done_after_effect(ctx, batch_id, Effect::Callback, None).await?;
    ctx.metrics.callback(outcome);
    Ok(EffectRun::Settled(JobOutcome::Done))
}

/// The job retry rule, shortened for callbacks: a receiver is retried sooner than a
/// dependency outage would be.
fn backoff(ctx: &Ctx) -> Backoff {
    let s = &ctx.settings;
    Backoff::new(
        Duration::from_millis(s.retry_base_ms.min(1_000)),
        Duration::from_millis(s.retry_cap_ms.min(60_000)),
    )
}
