//! A batch's life: created open, closed (it then completes once every photo is done or
//! failed, and its finalisation goes to the workers) or deleted with everything it holds.

use std::time::Duration;

use tirage_core::keys;
use tirage_core::model::{Batch, BatchOptions, BatchState};
use tirage_ports::completion::hand_off;
use tirage_ports::{Cap, RateDecision};
use tirage_runtime::telemetry::propagation;
use uuid::Uuid;

use crate::auth::retry_after_secs;
use crate::error::ApiError;
use crate::state::AppState;

/// Creates an open, empty batch owned by `owner` (a session id), expiring after the
/// configured batch lifetime; [`ApiError::BatchQuotaExceeded`] when the session created
/// `limits.batches_per_session_per_hour` within the hour, or its client `address`
/// `limits.batches_per_address_per_hour` across its sessions, [`ApiError::TooManyOpenBatches`]
/// when it has `limits.max_open_batches_per_session` open ones.
pub async fn create(
    state: &AppState,
    owner: String,
    address: &str,
    options: BatchOptions,
    callback_url: Option<String>,
) -> Result<Batch, ApiError> {
    let limits = &state.settings.limits;
    let session_key = format!("batches-created:{owner}");
    within_hourly_quota(state, &session_key, limits.batches_per_session_per_hour).await?;
    let address_key = format!("batches-created-by:{address}");
    within_hourly_quota(state, &address_key, limits.batches_per_address_per_hour).await?;
    let now = state.clock.now();
    let ttl = chrono::Duration::seconds(
        i64::try_from(state.settings.limits.batch_ttl_secs)
            .map_err(|_| ApiError::Internal("batch_ttl_secs out of range".into()))?,
    );
    let batch = Batch {
        id: Uuid::new_v4(),
        owner,
        state: BatchState::Open,
        options,
        callback_url,
        total: 0,
        done: 0,
        failed: 0,
        created_at: now,
        expires_at: now + ttl,
    };
    let max_open = state.settings.limits.max_open_batches_per_session;
    let cap = Cap::from_setting(max_open);
    if !state.ports.state.create_batch(&batch, cap).await? {
        return Err(ApiError::TooManyOpenBatches { limit: max_open });
    }
    tracing::info!(batch_id = %batch.id, "batch created");
    Ok(batch)
}

/// Counts one batch creation on `key` (a session's, or a client address's across its
/// sessions) against `limit` per hour (0: none). Every attempt counts, closed, deleted and
/// refused ones too: what a client may make the store keep for a batch's lifetime is
/// bounded by the hour, not only by what is open at once, and new sessions bring no new
/// room past the address's quota.
async fn within_hourly_quota(state: &AppState, key: &str, limit: u32) -> Result<(), ApiError> {
    if limit == 0 {
        return Ok(());
    }
    let decision = state.ports.state.rate_limit(key, limit, HOUR).await?;
    match decision {
        RateDecision::Allowed { .. } => Ok(()),
        RateDecision::Limited { retry_after } => Err(ApiError::BatchQuotaExceeded {
            limit,
            retry_after_secs: retry_after_secs(retry_after),
        }),
    }
}

/// The window of [`within_hourly_quota`].
const HOUR: Duration = Duration::from_secs(3600);

/// Closes the batch, and hands its finalisation to the workers when it is complete. A
/// close retried after a failed hand-off hands it off again while its event is not done:
/// duplicates are harmless, a lost one is not.
pub async fn close(state: &AppState, batch_id: Uuid) -> Result<Batch, ApiError> {
    let closed = state.ports.state.close_batch(batch_id).await?;
    let (states, queue) = (state.ports.state.as_ref(), state.ports.queue.as_ref());
    let trace = propagation::current();
    hand_off(states, queue, &closed.batch, closed.completed_now, &trace).await?;
    let completed = closed.batch.state == BatchState::Completed;
    tracing::info!(batch_id = %batch_id, completed, "batch closed");
    Ok(closed.batch)
}

/// Deletes the batch, its originals and renditions.
pub async fn delete(state: &AppState, batch_id: Uuid) -> Result<(), ApiError> {
    let prefix = keys::batch_prefix(batch_id);
    // First, the reconciler's sweep of the batch's prefix, brought forward to when its
    // upload tickets (presigned PUTs, valid until they lapse whatever became of the batch)
    // have lapsed: an upload that starts just before its URL lapses still finishes, hence
    // twice the TTL. It also removes what a worker mid-job writes after the deletion below.
    // Before anything is deleted, so that a failure here fails the delete while the batch
    // is still there for the client's retry (once it is gone a retry answers 404 and could
    // schedule nothing), instead of passing unseen and leaving late renditions until the
    // batch would have expired.
    let tickets_lapse = state.settings.api.presign_ttl().saturating_mul(2);
    let sweep_at = state.clock.now()
        + chrono::Duration::from_std(tickets_lapse)
            .map_err(|_| ApiError::Internal("presign_ttl_secs out of range".into()))?;
    state.ports.state.sweep_batch_at(batch_id, sweep_at).await?;
    // Objects before the state: should the state go first and the object deletion fail,
    // a retry would 404 and only the sweep would remove them.
    let removed = state.ports.objects.delete_prefix(&prefix).await?;
    state.ports.state.delete_batch(batch_id).await?;
    // A worker that was mid-job may have written renditions between the two calls.
    let late = match state.ports.objects.delete_prefix(&prefix).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(batch_id = %batch_id, error = %e, "second object sweep failed; the scheduled sweep removes what is left");
            0
        }
    };
    tracing::info!(batch_id = %batch_id, objects = removed + late, "batch deleted");
    Ok(())
}
