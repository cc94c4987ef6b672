//! The side effects of a completed batch: the `batch.completed` event and the callback.
//!
//! Several `FinalizeBatch` messages may exist for one batch (a resize job redelivered after
//! its batch completed publishes another one). Each effect is therefore claimed in the
//! state store before it runs and marked done after it succeeded:
//! - done already → skip;
//! - claimed by someone else on a first delivery → skip (they are running it now);
//! - claimed, but this message was redelivered or retried → the claimer may have been us
//!   before a crash, so run it again (at-least-once wins over losing the effect).

use std::time::{Duration, Instant};

use chrono::Utc;
use secrecy::ExposeSecret;
use tirage_shared::backoff::Backoff;
use tirage_shared::codes::{Effect, FailureCode};
use tirage_shared::{Batch, BatchCompleted, BatchState};
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::context::Ctx;
use crate::failure::Failure;
use crate::signature::{SIGNATURE_HEADER, sign};
use crate::ssrf::resolve_callback;

/// Runs the side effects of a completed batch that are not done yet. `maybe_ours` is true
/// when this message was delivered before (see the module's doc). Returns the outcome label:
/// `done`, `duplicate` (nothing left to do) or `dropped` (the batch is not completed).
pub(crate) async fn run(
    ctx: &Ctx,
    batch_id: Uuid,
    maybe_ours: bool,
) -> Result<&'static str, Failure> {
    let Some(batch) = ctx
        .io("get batch", ctx.ports.state.get_batch(batch_id))
        .await?
    else {
        return Err(Failure::Gone);
    };
    if batch.state != BatchState::Completed {
        warn!(state = ?batch.state, "finalisation requested for a batch that is not completed");
        return Ok("dropped");
    }
    let body = completed_json(&batch)?;
    // Both effects are claimed before either runs, so one handler runs both with the same
    // body: a concurrent duplicate cannot slip in and send the callback a `completed_at`
    // other than the event's.
    let run_event = claim(ctx, batch_id, Effect::Event, maybe_ours).await?;
    let callback = match batch.callback_url.as_deref() {
        Some(url) if claim(ctx, batch_id, Effect::Callback, maybe_ours).await? => Some(url),
        _ => None,
    };
    let ran = run_event || callback.is_some();
    if run_event {
        let publish = ctx.ports.queue.publish_event(BatchCompleted::EVENT, &body);
        ctx.io("publish event", publish).await?;
        ctx.metrics.events_published.inc();
        mark_done(ctx, batch_id, Effect::Event).await?;
        info!("batch.completed event published");
    }
    if let Some(url) = callback {
        let outcome = deliver_callback(ctx, url, &body).await;
        ctx.metrics.callbacks.with_label_values(&[outcome]).inc();
        // Marked done even when given up: the retry budget is the bound the contract
        // promises, and a later redelivery must not start it over.
        mark_done(ctx, batch_id, Effect::Callback).await?;
    }
    Ok(if ran { "done" } else { "duplicate" })
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
fn completed_json(batch: &Batch) -> Result<Vec<u8>, Failure> {
    let event = BatchCompleted {
        event: BatchCompleted::EVENT.into(),
        batch_id: batch.id,
        total: batch.total,
        done: batch.done,
        failed: batch.failed,
        created_at: batch.created_at,
        completed_at: Utc::now(),
    };
    serde_json::to_vec(&event)
        .map_err(|e| Failure::Permanent(FailureCode::InternalError, e.to_string()))
}

/// POSTs the event to the callback URL, retrying with backoff within the configured budget.
/// Returns the outcome label: `delivered`, `refused` (SSRF guard, bad URL or a 4xx answer)
/// or `gave_up`.
async fn deliver_callback(ctx: &Ctx, url: &str, body: &[u8]) -> &'static str {
    let s = &ctx.settings;
    let deadline = Instant::now() + Duration::from_millis(s.callback_retry_for_ms);
    // The job's retry rule, shortened: the whole budget is spent within one delivery.
    let policy = Backoff::new(
        Duration::from_millis(s.retry_base_ms.min(1_000)),
        Duration::from_millis(s.retry_cap_ms.min(60_000)),
    );
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        // Signed per attempt: the timestamp is the sending time, so a retry minutes later
        // still falls within the receiver's tolerance window.
        let sig = sign(
            s.callback_secret.expose_secret().as_bytes(),
            Utc::now().timestamp(),
            body,
        );
        let retry_reason = match post_once(ctx, url, body, &sig).await {
            Ok(()) => {
                info!(attempt, "callback delivered");
                return "delivered";
            }
            Err(CallbackFailure::Permanent(reason)) => {
                warn!(reason, "callback refused; not retried");
                return "refused";
            }
            Err(CallbackFailure::Retry(reason)) => reason,
        };
        let delay = policy.delay(attempt);
        if Instant::now() + delay >= deadline {
            error!(attempt, reason = retry_reason, "callback given up");
            return "gave_up";
        }
        warn!(
            attempt,
            reason = retry_reason,
            delay_ms = delay.as_millis() as u64,
            "callback failed; retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

enum CallbackFailure {
    Permanent(String),
    Retry(String),
}

async fn post_once(ctx: &Ctx, url: &str, body: &[u8], sig: &str) -> Result<(), CallbackFailure> {
    let s = &ctx.settings;
    // Resolved and checked on every attempt, then pinned: the connection goes to the
    // address we checked, whatever the DNS says a moment later.
    let target = match resolve_callback(url, &s.callback_policy()).await {
        Ok(t) => t,
        Err(e) if e.is_transient() => return Err(CallbackFailure::Retry(e.to_string())),
        Err(e) => return Err(CallbackFailure::Permanent(e.to_string())),
    };
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_millis(s.callback_timeout_ms));
    if let Some(host) = &target.host {
        builder = builder.resolve(host, target.addr);
    }
    let client = builder
        .build()
        .map_err(|e| CallbackFailure::Permanent(format!("http client: {e}")))?;
    let response = client
        .post(target.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("tirage-worker/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-tirage-event", BatchCompleted::EVENT)
        .header(SIGNATURE_HEADER, sig)
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| CallbackFailure::Retry(e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_client_error()
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        // The receiver refused this request; sending it again would be refused again.
        Err(CallbackFailure::Permanent(format!("answered {status}")))
    } else if status.is_redirection() {
        // Never followed: the redirect target was not checked by the SSRF guard.
        Err(CallbackFailure::Permanent(format!(
            "answered {status}; redirects are not followed"
        )))
    } else {
        Err(CallbackFailure::Retry(format!("answered {status}")))
    }
}
