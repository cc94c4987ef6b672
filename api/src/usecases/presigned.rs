//! Photos uploaded straight to the object store: a presigned upload ticket per announced
//! file, then `complete` per photo, which checks the object and hands it to the intake
//! ([`super::intake`]).

use tirage_core::keys;
use tirage_core::model::{Batch, PhotoRecord, PhotoState};
use tirage_ports::{Payer, PendingUpload, PresignedRequest};
use uuid::Uuid;

use super::intake::{delete_objects, ensure_accepting, publish_jobs, register_and_publish};
use super::quota;
use crate::error::ApiError;
use crate::state::AppState;

/// A file the client announced, already checked, its name reduced to a label.
pub struct Announced {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
}

/// Where to upload one new photo.
pub struct Ticket {
    pub photo_id: Uuid,
    pub upload: PresignedRequest,
}

/// A presigned upload per file, each signed for exactly its announced size and remembered
/// as pending until its `complete`. The pending uploads hold their place under the batch's
/// photo limit (all of them or none, [`PendingUploads::put_pending_uploads`]), so tickets can
/// never add up to more photos than a batch may hold. Their announced sizes are charged to
/// `payer` first ([`quota`]): a presigned PUT cannot be taken back, so its bytes count from
/// the moment it is handed out.
///
/// [`PendingUploads::put_pending_uploads`]: tirage_ports::PendingUploads::put_pending_uploads
pub async fn issue_tickets(
    state: &AppState,
    batch: &Batch,
    payer: Payer<'_>,
    files: Vec<Announced>,
) -> Result<Vec<Ticket>, ApiError> {
    let limit = state.settings.limits.max_photos_per_batch;
    // A quick refusal from the batch as read; the store counts pending uploads atomically.
    ensure_accepting(batch, files.len() as u64, limit)?;
    let bytes = files.iter().map(|f| f.size).sum();
    quota::charge(state, batch, payer, bytes).await?;
    let issued = presign_and_hold(state, batch, files, limit).await;
    if issued.is_err() {
        quota::refund(state, batch, bytes).await;
    }
    issued
}

/// Signs a PUT per file and holds the files' places under the batch's photo limit.
async fn presign_and_hold(
    state: &AppState,
    batch: &Batch,
    files: Vec<Announced>,
    limit: u64,
) -> Result<Vec<Ticket>, ApiError> {
    let ttl = state.settings.api.presign_ttl();
    let mut tickets = Vec::with_capacity(files.len());
    let mut pending = Vec::with_capacity(files.len());
    for file in files {
        let photo_id = Uuid::new_v4();
        let key = keys::original_key(batch.id, photo_id);
        let upload = state
            .ports
            .objects
            .presign_put(&key, &file.content_type, file.size, ttl)
            .await?;
        pending.push(PendingUpload {
            photo_id,
            filename: file.filename,
            content_type: file.content_type,
            size: file.size,
            expires_at: upload.expires_at,
        });
        tickets.push(Ticket { photo_id, upload });
    }
    state
        .ports
        .state
        .put_pending_uploads(batch.id, &pending, limit)
        .await?;
    Ok(tickets)
}

/// Finishes a presigned upload: checks the object exists, registers the photo and
/// publishes its job.
pub async fn complete(
    state: &AppState,
    batch: &Batch,
    photo_id: Uuid,
    request_id: &str,
) -> Result<PhotoRecord, ApiError> {
    // As for uploads through the API: no photo is registered while its job cannot be
    // published.
    state.ports.queue.ping().await?;
    let Some(pending) = state
        .ports
        .state
        .take_pending_upload(batch.id, photo_id)
        .await?
    else {
        // Completing twice (a retry after a lost answer) is not an error. A photo still
        // queued gets its job again: the first attempt may have registered it and then
        // failed before publishing (a duplicate job is harmless, jobs are idempotent).
        return match state.ports.state.get_photo(batch.id, photo_id).await? {
            Some(photo) => {
                if photo.state == PhotoState::Queued {
                    let one = std::slice::from_ref(&photo);
                    publish_jobs(state, batch, one, &[photo.id], request_id).await?;
                }
                Ok(photo)
            }
            None => Err(ApiError::UploadNotFound),
        };
    };
    let result = finish_pending(state, batch, &pending, request_id).await;
    // Put the ticket back when nothing was registered yet, so the client can finish it
    // later. Not after a state-store error: the registration may have landed, and a second
    // one would count the photo twice.
    if let Err(ApiError::UploadMissing(_) | ApiError::ObjectStoreUnavailable(_)) = &result
        && let Err(e) = state
            .ports
            .state
            .put_pending_upload(batch.id, &pending)
            .await
    {
        tracing::warn!(batch_id = %batch.id, photo_id = %photo_id, error = %e, "could not restore the pending upload");
    }
    result
}

async fn finish_pending(
    state: &AppState,
    batch: &Batch,
    pending: &PendingUpload,
    request_id: &str,
) -> Result<PhotoRecord, ApiError> {
    let key = keys::original_key(batch.id, pending.photo_id);
    let meta = state
        .ports
        .objects
        .head(&key)
        .await?
        .ok_or(ApiError::UploadMissing(pending.photo_id))?;
    // The store held the PUT to the announced size; checked again here, because the
    // object may have come another way, and the byte limit may have shrunk meanwhile.
    let limit = pending.size.min(state.settings.limits.max_file_bytes);
    if meta.size > limit {
        delete_objects(state, &[key]).await;
        tracing::warn!(batch_id = %batch.id, photo_id = %pending.photo_id, size = meta.size, limit, "uploaded object over its announced size, refused");
        return Err(ApiError::FileTooLarge { limit });
    }
    let photo = PhotoRecord::queued(pending.photo_id, pending.filename.clone());
    register_and_publish(state, batch, std::slice::from_ref(&photo), &[], request_id).await?;
    Ok(photo)
}
