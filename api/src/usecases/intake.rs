//! Getting stored originals into a batch, whichever way they were uploaded (through the API
//! or straight to the object store), in the order that loses no photo and miscounts no
//! batch:
//! 1. store the original (a failure leaves nothing counted; stored leftovers are deleted);
//! 2. register the photos in the batch, all or none (`add_photos` enforces the photo limit
//!    and refuses closed batches atomically);
//! 3. publish one confirmed job per photo. A photo whose job the broker did not confirm is
//!    recorded as failed ([`FailureCode::EnqueueFailed`]), so done + failed still reaches
//!    total, and the request answers 503.

use std::time::Instant;

use futures::StreamExt;
use tirage_core::codes::FailureCode;
use tirage_core::keys;
use tirage_core::model::{Batch, BatchState, PhotoOutcome, PhotoRecord, ResizeJob};
use tirage_ports::completion::hand_off;
use tirage_ports::{QueueError, RecordResult, WorkItem};
use tirage_runtime::telemetry::propagation;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Refuses photos for a batch that is closed or already full, before anything is stored.
pub fn ensure_accepting(batch: &Batch, incoming: u64, limit: u64) -> Result<(), ApiError> {
    if batch.state != BatchState::Open {
        return Err(ApiError::BatchClosed);
    }
    if batch.total.saturating_add(incoming) > limit {
        return Err(ApiError::TooManyPhotos { limit });
    }
    Ok(())
}

/// Registers stored originals, then publishes their jobs. On a definite refusal (closed,
/// full) the originals are deleted; on an outage they are left to expire with the batch,
/// because the registration may have happened and a registered photo needs its original.
/// `earlier` names the photos an earlier attempt of this request registered (see
/// [`publish_jobs`]).
pub async fn register_and_publish(
    state: &AppState,
    batch: &Batch,
    photos: &[PhotoRecord],
    earlier: &[Uuid],
    request_id: &str,
) -> Result<(), ApiError> {
    let limit = state.settings.limits.max_photos_per_batch;
    if let Err(e) = state.ports.state.add_photos(batch.id, photos, limit).await {
        if !e.is_transient() {
            delete_unregistered_originals(state, batch.id, photos).await;
        }
        return Err(e.into());
    }
    publish_jobs(state, batch, photos, earlier, request_id).await
}

/// Publishes one job per photo, at most `publish_concurrency` confirms awaited at once.
/// A photo this request registered whose job was not confirmed is recorded as failed, so
/// the batch still closes. A photo in `earlier` was registered by an earlier attempt of the
/// same request (a retried `complete`, a multipart retry with its `Idempotency-Key`), whose
/// job may well be queued: an unconfirmed extra publish leaves it as it is (the reconciler
/// republishes a job that really went missing). Returns the first publish error, if any.
pub async fn publish_jobs(
    state: &AppState,
    batch: &Batch,
    photos: &[PhotoRecord],
    earlier: &[Uuid],
    request_id: &str,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    let jobs = photos
        .iter()
        .map(|p| ResizeJob::new(batch, p.id, Some(request_id.to_owned()), now));
    let results: Vec<(Uuid, Result<(), QueueError>)> = futures::stream::iter(jobs)
        .map(|job| async move {
            let started = Instant::now();
            let photo_id = job.photo_id;
            // The job carries this span's context: the worker's run of it is its child.
            let span = tracing::info_span!(
                "publish",
                otel.name = "publish resize",
                otel.kind = "producer",
                batch_id = %batch.id,
                photo_id = %photo_id,
            );
            let trace = propagation::of(&span);
            let result = state
                .ports
                .queue
                .publish(&WorkItem::Resize(job), &trace)
                .instrument(span)
                .await;
            state
                .metrics
                .publish_latency
                .observe(started.elapsed().as_secs_f64());
            (photo_id, result)
        })
        .buffer_unordered(state.settings.api.publish_concurrency)
        .collect()
        .await;

    let mut first_error = None;
    for (photo_id, result) in results {
        match result {
            Ok(()) => {
                state.metrics.photos_accepted.inc();
                tracing::info!(batch_id = %batch.id, photo_id = %photo_id, "photo queued");
            }
            Err(e) if earlier.contains(&photo_id) => {
                state.metrics.publish_failures.inc();
                tracing::warn!(batch_id = %batch.id, photo_id = %photo_id, error = %e, "a retry's extra job not confirmed; the photo keeps its earlier one");
                first_error.get_or_insert(e);
            }
            Err(e) => {
                state.metrics.publish_failures.inc();
                tracing::error!(batch_id = %batch.id, photo_id = %photo_id, error = %e, "job not confirmed; recording the photo as failed");
                record_enqueue_failure(state, batch.id, photo_id).await;
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(e.into()),
    }
}

async fn record_enqueue_failure(state: &AppState, batch_id: Uuid, photo_id: Uuid) {
    let outcome = PhotoOutcome::Failed {
        code: FailureCode::EnqueueFailed,
    };
    match state
        .ports
        .state
        .record_outcome(batch_id, photo_id, &outcome)
        .await
    {
        Ok(RecordResult::Recorded {
            batch,
            completed_now,
        }) => {
            // This failure may have completed a closed batch: its side effects still need
            // a worker.
            let (states, queue) = (state.ports.state.as_ref(), state.ports.queue.as_ref());
            let trace = propagation::current();
            if let Err(e) = hand_off(states, queue, &batch, completed_now, &trace).await {
                tracing::error!(batch_id = %batch_id, error = %e, "could not hand the completed batch to the workers; closing it again retries");
            }
        }
        // Registered by this request just before: neither can happen, and neither moves a
        // counter.
        Ok(RecordResult::AlreadyRecorded { .. } | RecordResult::UnknownPhoto { .. }) => {}
        Err(e) => {
            // The photo stays queued with no job: the one case that needs an operator.
            tracing::error!(batch_id = %batch_id, photo_id = %photo_id, error = %e, "could not record the enqueue failure; the batch will not complete on its own");
        }
    }
}

/// Deletes the originals a refused upload stored, except those of photos already
/// registered: a retry with an `Idempotency-Key` rewrites the originals of the photos its
/// first attempt registered, and those must stay. When the store cannot tell, the original
/// stays too (it expires with its batch).
pub async fn delete_unregistered_originals(
    state: &AppState,
    batch_id: Uuid,
    photos: &[PhotoRecord],
) {
    let mut orphans = Vec::with_capacity(photos.len());
    for photo in photos {
        if let Ok(None) = state.ports.state.get_photo(batch_id, photo.id).await {
            orphans.push(keys::original_key(batch_id, photo.id));
        }
    }
    delete_objects(state, &orphans).await;
}

/// Deletes originals nothing will use, logging (not failing on) what cannot be deleted.
pub async fn delete_objects(state: &AppState, keys: &[String]) {
    for key in keys {
        if let Err(e) = state.ports.objects.delete(key).await {
            tracing::warn!(key, error = %e, "could not delete an orphaned original; it expires with its batch");
        }
    }
}
