//! Getting photos in: multipart uploads through the API, or presigned uploads straight to
//! the object store followed by `complete`.
//!
//! Order of effects, chosen so no photo is lost and no batch miscounted:
//! 1. store the original (a failure leaves nothing counted; stored leftovers are deleted);
//! 2. register the photos in the batch, all or none (`add_photos` enforces the photo limit
//!    and refuses closed batches atomically);
//! 3. publish one confirmed job per photo. A photo whose job the broker did not confirm is
//!    recorded as failed (`enqueue_failed`), so done + failed still reaches total, and the
//!    request answers 503.

use std::collections::BTreeMap;
use std::time::Instant;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use bytes::Bytes;
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use tirage_shared::keys;
use tirage_shared::model::{Batch, BatchState, PhotoOutcome, PhotoRecord, PhotoState, ResizeJob};
use tirage_shared::ports::{ByteStream, PendingUpload, QueueError, RecordResult, WorkItem};
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody, SessionErrors};
use crate::routes::{owned_batch, read_json};
use crate::startup::AppState;
use crate::telemetry::RequestId;
use crate::views::{AcceptedPhoto, PhotosAccepted, UploadTicket, UploadsCreated, UploadsRequest};

/// Outcome code recorded for a photo whose job the broker never confirmed.
pub const ENQUEUE_FAILED: &str = "enqueue_failed";
const MAX_FILENAME_LEN: usize = 255;
/// Chunks in flight between the HTTP body and the object store for one part.
const PART_CHANNEL_DEPTH: usize = 4;

/// Refuses photos for a batch that is closed or already full, before anything is stored.
fn ensure_accepting(batch: &Batch, incoming: u64, limit: u64) -> Result<(), ApiError> {
    if batch.state != BatchState::Open {
        return Err(ApiError::BatchClosed);
    }
    if batch.total.saturating_add(incoming) > limit {
        return Err(ApiError::TooManyPhotos { limit });
    }
    Ok(())
}

/// A client file name reduced to a harmless label (it never names an object).
fn label(name: Option<&str>, fallback: &str) -> String {
    let cleaned: String = name
        .unwrap_or(fallback)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME_LEN)
        .collect();
    if cleaned.trim().is_empty() {
        fallback.to_owned()
    } else {
        cleaned
    }
}

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The request's `Idempotency-Key`, if it sent one: 1 to 128 of `A-Z a-z 0-9 - _ . :`.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::InvalidIdempotencyKey)?;
    let sane = (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if sane {
        Ok(Some(key.to_owned()))
    } else {
        Err(ApiError::InvalidIdempotencyKey)
    }
}

/// The id of the `index`-th photo of an upload. With an idempotency key it is derived from
/// the batch, the key and the index, so a retried request names the same photos, and the
/// state store registers (and counts) each of them once; without one it is random.
fn new_photo_id(batch_id: Uuid, idempotency_key: Option<&str>, index: usize) -> Uuid {
    match idempotency_key {
        Some(key) => Uuid::new_v5(&batch_id, format!("{key}#{index}").as_bytes()),
        None => Uuid::new_v4(),
    }
}

fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Streams one multipart part into the object store. The part is not `Send` (actix
/// payloads live on one thread), so it is pumped through a small channel whose receiving
/// end is the `Send` stream the store consumes; both sides run in this task.
async fn store_part(
    state: &AppState,
    field: &mut actix_multipart::Field,
    key: &str,
    content_type: &str,
) -> Result<u64, ApiError> {
    let (mut tx, rx) =
        futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(PART_CHANNEL_DEPTH);
    let body: ByteStream = Box::pin(rx);
    let put = state.deps.objects.put_stream(
        key,
        body,
        content_type,
        state.settings.limits.max_file_bytes,
    );
    let feed = async move {
        while let Some(chunk) = field.next().await {
            let item = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = item.is_err();
            // A closed channel means the store stopped reading (limit hit or store error);
            // its result says which.
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    };
    let (stored, ()) = futures::join!(put, feed);
    Ok(stored?)
}

/// Reads and discards what is left of a refused request, up to a bound, so the client
/// reads our answer instead of a connection reset mid-upload.
async fn drain(multipart: &mut Multipart, mut budget: u64) {
    while let Some(Ok(mut field)) = multipart.next().await {
        while let Some(Ok(chunk)) = field.next().await {
            budget = budget.saturating_sub(chunk.len() as u64);
            if budget == 0 {
                return;
            }
        }
    }
}

async fn delete_objects(state: &AppState, keys: &[String]) {
    for key in keys {
        // Deleting by exact key through the prefix call: a key is a prefix of itself only.
        if let Err(e) = state.deps.objects.delete_prefix(key).await {
            tracing::warn!(key, error = %e, "could not delete an orphaned original; it expires with its batch");
        }
    }
}

/// Deletes the originals a refused upload stored, except those of photos already
/// registered: a retry with an `Idempotency-Key` rewrites the originals of the photos its
/// first attempt registered, and those must stay. When the store cannot tell, the original
/// stays too (it expires with its batch).
async fn delete_unregistered_originals(state: &AppState, batch_id: Uuid, photos: &[PhotoRecord]) {
    let mut orphans = Vec::with_capacity(photos.len());
    for photo in photos {
        if let Ok(None) = state.deps.state.get_photo(batch_id, photo.id).await {
            orphans.push(keys::original_key(batch_id, photo.id));
        }
    }
    delete_objects(state, &orphans).await;
}

/// Publishes one job per photo, at most `publish_concurrency` confirms awaited at once.
/// Photos whose job was not confirmed are recorded as failed so the batch still closes.
/// Returns the first publish error, if any.
async fn publish_jobs(
    state: &AppState,
    batch: &Batch,
    photos: &[PhotoRecord],
    request_id: &RequestId,
) -> Result<(), ApiError> {
    let jobs = photos.iter().map(|p| ResizeJob {
        batch_id: batch.id,
        photo_id: p.id,
        source_key: keys::original_key(batch.id, p.id),
        options: batch.options.clone(),
        request_id: Some(request_id.0.clone()),
        published_at: Utc::now(),
    });
    let results: Vec<(Uuid, Result<(), QueueError>)> = futures::stream::iter(jobs)
        .map(|job| async move {
            let started = Instant::now();
            let photo_id = job.photo_id;
            let result = state.deps.queue.publish(&WorkItem::Resize(job)).await;
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
        code: ENQUEUE_FAILED.into(),
    };
    match state
        .deps
        .state
        .record_outcome(batch_id, photo_id, &outcome)
        .await
    {
        Ok(RecordResult::Recorded {
            completed_now: true,
            ..
        }) => {
            // This failure completed a closed batch: its side effects still need a worker.
            if let Err(e) = state
                .deps
                .queue
                .publish(&WorkItem::FinalizeBatch { batch_id })
                .await
            {
                tracing::error!(batch_id = %batch_id, error = %e, "could not hand the completed batch to the workers; closing it again retries");
            }
        }
        Ok(_) => {}
        Err(e) => {
            // The photo stays queued with no job: the one case that needs an operator.
            tracing::error!(batch_id = %batch_id, photo_id = %photo_id, error = %e, "could not record the enqueue failure; the batch will not complete on its own");
        }
    }
}

fn accepted(photos: &[PhotoRecord]) -> PhotosAccepted {
    PhotosAccepted {
        photos: photos
            .iter()
            .map(|p| AcceptedPhoto {
                id: p.id,
                filename: p.filename.clone(),
                state: PhotoState::Queued,
            })
            .collect(),
    }
}

/// Registers stored originals, then publishes their jobs. On a definite refusal (closed,
/// full) the originals are deleted; on an outage they are left to expire with the batch,
/// because the registration may have happened and a registered photo needs its original.
async fn register_and_publish(
    state: &AppState,
    batch: &Batch,
    photos: &[PhotoRecord],
    request_id: &RequestId,
) -> Result<(), ApiError> {
    let limit = state.settings.limits.max_photos_per_batch;
    if let Err(e) = state.deps.state.add_photos(batch.id, photos, limit).await {
        if !e.is_transient() {
            delete_unregistered_originals(state, batch.id, photos).await;
        }
        return Err(e.into());
    }
    publish_jobs(state, batch, photos, request_id).await
}

/// Upload photos (multipart/form-data, parts named `file`).
///
/// Each part is streamed to the object store as it arrives. The answer comes once every
/// photo's job is confirmed by the broker. Send an `Idempotency-Key` to make retries safe:
/// the same key on the same batch names the same photos, which are counted once.
#[utoipa::path(
    tag = "photos",
    params(
        ("batch_id" = Uuid, Path, description = "Batch id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Any 1 to 128 of `A-Z a-z 0-9 - _ . :`, new for every upload and the same for its retries: a retry then registers the same photos instead of new ones"),
    ),
    request_body(content_type = "multipart/form-data", description = "One or more parts named `file`"),
    responses(
        (status = 202, description = "Photos stored and queued", body = PhotosAccepted),
        (status = 400, description = "Broken multipart body (`malformed_multipart`)", body = ErrorBody),
        (status = 404, description = "No such batch for this session", body = ErrorBody),
        (status = 409, description = "Batch closed (`batch_closed`) or photo limit reached (`too_many_photos`)", body = ErrorBody),
        (status = 413, description = "A part exceeds the byte limit (`file_too_large`)", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data", body = ErrorBody),
        (status = 422, description = "No `file` part (`no_files`), an empty one (`empty_file`) or a malformed `Idempotency-Key` (`invalid_idempotency_key`)", body = ErrorBody),
        SessionErrors,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/v1/batches/{batch_id}/photos")]
pub async fn upload_photos(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
    req: HttpRequest,
    payload: web::Payload,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    if !is_multipart(&req) {
        return Err(ApiError::UnsupportedMediaType {
            expected: "multipart/form-data",
        });
    }
    let idempotency_key = idempotency_key(&req)?;
    let batch = owned_batch(&state, &auth, path.into_inner()).await?;
    let limit = state.settings.limits.max_photos_per_batch;
    ensure_accepting(&batch, 1, limit)?;
    // While the broker is known to be down, refuse before storing anything: the client
    // retries the same request later, instead of getting photos recorded as failed.
    state.deps.queue.ping().await?;

    let mut multipart = Multipart::new(req.headers(), payload);
    let mut photos: Vec<PhotoRecord> = Vec::new();
    let mut fresh: u64 = 0;
    let mut received: u64 = 0;
    let streamed: Result<(), ApiError> = async {
        while let Some(field) = multipart.next().await {
            let mut field = field.map_err(|e| ApiError::MalformedMultipart(e.to_string()))?;
            if field.name() != Some("file") {
                // Other form fields carry nothing we use; skip their bytes.
                while let Some(chunk) = field.next().await {
                    chunk.map_err(|e| ApiError::MalformedMultipart(e.to_string()))?;
                }
                continue;
            }
            let photo_id = new_photo_id(batch.id, idempotency_key.as_deref(), photos.len());
            let filename = label(
                field.content_disposition().and_then(|cd| cd.get_filename()),
                &format!("photo-{}", photos.len() + 1),
            );
            if idempotency_key.is_some()
                && state
                    .deps
                    .state
                    .get_photo(batch.id, photo_id)
                    .await?
                    .is_some()
            {
                // Registered by an earlier attempt of this request, whose original is
                // stored: it is neither stored again nor counted again.
                while let Some(chunk) = field.next().await {
                    chunk.map_err(|e| ApiError::MalformedMultipart(e.to_string()))?;
                }
                photos.push(PhotoRecord::queued(photo_id, filename));
                continue;
            }
            // Checked before storing: a photo over the limit never reaches the store.
            fresh += 1;
            ensure_accepting(&batch, fresh, limit)?;
            let content_type = field
                .content_type()
                .map(|m| m.essence_str().to_owned())
                .filter(|m| m.starts_with("image/"))
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            let key = keys::original_key(batch.id, photo_id);
            let size = store_part(&state, &mut field, &key, &content_type).await?;
            // Recorded before the emptiness check so a stored empty object is cleaned up.
            photos.push(PhotoRecord::queued(photo_id, filename.clone()));
            if size == 0 {
                return Err(ApiError::EmptyFile(filename));
            }
            received += size;
        }
        if photos.is_empty() {
            return Err(ApiError::NoFiles);
        }
        Ok(())
    }
    .await;

    if let Err(e) = streamed {
        delete_unregistered_originals(&state, batch.id, &photos).await;
        if matches!(
            e,
            ApiError::FileTooLarge { .. } | ApiError::TooManyPhotos { .. } | ApiError::EmptyFile(_)
        ) {
            drain(&mut multipart, state.settings.limits.drain_max_bytes).await;
        }
        return Err(e);
    }
    state.metrics.upload_bytes.inc_by(received);
    register_and_publish(&state, &batch, &photos, &request_id).await?;
    tracing::info!(batch_id = %batch.id, photos = photos.len(), bytes = received, "upload accepted");
    Ok(HttpResponse::Accepted().json(accepted(&photos)))
}

/// Ask for presigned upload URLs, so browsers upload straight to the object store.
///
/// Each file gets a `PUT` URL; after uploading, call `complete` for it.
#[utoipa::path(
    tag = "photos",
    params(("batch_id" = Uuid, Path, description = "Batch id")),
    request_body(content = UploadsRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Upload URLs", body = UploadsCreated),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such batch for this session", body = ErrorBody),
        (status = 409, description = "Batch closed or photo limit reached", body = ErrorBody),
        (status = 413, description = "A declared size exceeds the byte limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Bad file list (`invalid_files`, `invalid_body`)", body = ErrorBody),
        SessionErrors,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/v1/batches/{batch_id}/uploads")]
pub async fn create_uploads(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let limits = &state.settings.limits;
    let body: UploadsRequest = read_json(&req, payload, limits.max_json_bytes)
        .await?
        .ok_or_else(|| ApiError::InvalidFiles("a body with `files` is required".into()))?;
    if body.files.is_empty() || body.files.len() > limits.max_uploads_per_request {
        return Err(ApiError::InvalidFiles(format!(
            "files must list 1 to {} files",
            limits.max_uploads_per_request
        )));
    }
    for f in &body.files {
        if f.size == 0 {
            return Err(ApiError::InvalidFiles(format!(
                "{:?} has size 0",
                f.filename
            )));
        }
        if f.size > limits.max_file_bytes {
            return Err(ApiError::FileTooLarge {
                limit: limits.max_file_bytes,
            });
        }
        let ct = f.content_type.to_ascii_lowercase();
        let plain = ct.len() <= 100
            && ct.starts_with("image/")
            && ct
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/.+-".contains(&b));
        if !plain {
            return Err(ApiError::InvalidFiles(format!(
                "content_type {:?} is not an image/* media type",
                f.content_type
            )));
        }
    }
    let batch = owned_batch(&state, &auth, path.into_inner()).await?;
    // Advisory here (pending uploads are not counted); `complete` enforces it atomically.
    ensure_accepting(&batch, body.files.len() as u64, limits.max_photos_per_batch)?;

    let ttl = state.settings.api.presign_ttl();
    let mut uploads = Vec::with_capacity(body.files.len());
    for f in &body.files {
        let photo_id = Uuid::new_v4();
        let key = keys::original_key(batch.id, photo_id);
        let content_type = f.content_type.to_ascii_lowercase();
        let presigned = state
            .deps
            .objects
            .presign_put(&key, &content_type, ttl)
            .await?;
        let pending = PendingUpload {
            photo_id,
            filename: label(Some(&f.filename), "photo"),
            content_type,
            size: f.size,
            expires_at: presigned.expires_at,
        };
        state
            .deps
            .state
            .put_pending_upload(batch.id, &pending)
            .await?;
        uploads.push(UploadTicket {
            photo_id,
            method: presigned.method,
            url: presigned.url,
            headers: presigned.headers.into_iter().collect::<BTreeMap<_, _>>(),
            expires_at: presigned.expires_at,
        });
    }
    Ok(HttpResponse::Created().json(UploadsCreated { uploads }))
}

/// Finish a presigned upload: checks the object exists, then queues its job.
#[utoipa::path(
    tag = "photos",
    params(
        ("batch_id" = Uuid, Path, description = "Batch id"),
        ("photo_id" = Uuid, Path, description = "Photo id from the upload ticket"),
    ),
    responses(
        (status = 202, description = "Photo queued", body = PhotosAccepted),
        (status = 404, description = "No such batch or pending upload (`upload_not_found`)", body = ErrorBody),
        (status = 409, description = "Nothing was uploaded (`upload_missing`), batch closed or full", body = ErrorBody),
        (status = 413, description = "The uploaded object exceeds the byte limit", body = ErrorBody),
        SessionErrors,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/v1/batches/{batch_id}/photos/{photo_id}/complete")]
pub async fn complete_upload(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let (batch_id, photo_id) = path.into_inner();
    let batch = owned_batch(&state, &auth, batch_id).await?;
    // As for multipart uploads: no photo is registered while its job cannot be published.
    state.deps.queue.ping().await?;
    let Some(pending) = state
        .deps
        .state
        .take_pending_upload(batch_id, photo_id)
        .await?
    else {
        // Completing twice (a retry after a lost answer) is not an error. A photo still
        // queued gets its job again: the first attempt may have registered it and then
        // failed before publishing (a duplicate job is harmless, jobs are idempotent).
        return match state.deps.state.get_photo(batch_id, photo_id).await? {
            Some(photo) => {
                if photo.state == PhotoState::Queued {
                    publish_jobs(&state, &batch, std::slice::from_ref(&photo), &request_id).await?;
                }
                Ok(HttpResponse::Accepted().json(accepted(&[photo])))
            }
            None => Err(ApiError::UploadNotFound),
        };
    };
    let result = finish_pending(&state, &batch, &pending, &request_id).await;
    // Put the ticket back when nothing was registered yet, so the client can finish it
    // later. Not after a state-store error: the registration may have landed, and a second
    // one would count the photo twice.
    if let Err(ApiError::UploadMissing(_) | ApiError::ObjectStoreUnavailable(_)) = &result
        && let Err(e) = state
            .deps
            .state
            .put_pending_upload(batch_id, &pending)
            .await
    {
        tracing::warn!(batch_id = %batch_id, photo_id = %photo_id, error = %e, "could not restore the pending upload");
    }
    let photo = result?;
    Ok(HttpResponse::Accepted().json(accepted(&[photo])))
}

async fn finish_pending(
    state: &AppState,
    batch: &Batch,
    pending: &PendingUpload,
    request_id: &RequestId,
) -> Result<PhotoRecord, ApiError> {
    let key = keys::original_key(batch.id, pending.photo_id);
    let meta = state
        .deps
        .objects
        .head(&key)
        .await?
        .ok_or(ApiError::UploadMissing(pending.photo_id))?;
    let limit = state.settings.limits.max_file_bytes;
    if meta.size > limit {
        delete_objects(state, &[key]).await;
        return Err(ApiError::FileTooLarge { limit });
    }
    let photo = PhotoRecord::queued(pending.photo_id, pending.filename.clone());
    register_and_publish(state, batch, std::slice::from_ref(&photo), request_id).await?;
    Ok(photo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_printable() {
        assert_eq!(label(Some("a\nb.jpg"), "x"), "ab.jpg");
        assert_eq!(label(None, "photo-1"), "photo-1");
        assert_eq!(label(Some("  "), "photo-2"), "photo-2");
        assert_eq!(label(Some(&"é".repeat(400)), "x").chars().count(), 255);
    }
}
