//! Getting photos in: multipart uploads through the API, or presigned uploads straight to
//! the object store followed by `complete`. The handlers read the request (multipart parts,
//! the announced files, the `Idempotency-Key`); storing, registering and queueing the
//! photos, in the order that loses none, is [`crate::usecases::intake`].

use actix_multipart::Multipart;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures::StreamExt;
use tirage_core::model::{ImageMediaType, PhotoRecord, PhotoState};
use tirage_core::wire::{
    AcceptedPhoto, ErrorBody, PhotoUploadForm, PhotosAccepted, UploadTicket, UploadsCreated,
    UploadsRequest,
};
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::body::discard;
use crate::error::{ApiError, SessionErrors};
use crate::extract::{owned_batch, read_json};
use crate::pace::{PaceError, Paced};
use crate::settings::LimitSettings;
use crate::state::AppState;
use crate::telemetry::RequestId;
use crate::usecases::presigned::{self, Announced};
use crate::usecases::streamed::StreamedUpload;

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
const MAX_FILENAME_LEN: usize = 255;

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
    request_body(content = PhotoUploadForm, content_type = "multipart/form-data", description = "One or more parts named `file`"),
    responses(
        (status = 202, description = "Photos stored and queued", body = PhotosAccepted),
        (status = 400, description = "Broken multipart body (`malformed_multipart`)", body = ErrorBody),
        (status = 404, description = "No such batch for this session", body = ErrorBody),
        (status = 408, description = "The body was slower than the configured minimum rate over a window (`body_too_slow`)", body = ErrorBody),
        (status = 409, description = "Batch closed (`batch_closed`), photo limit reached (`too_many_photos`), or the session or its client address keeps as many bytes as it may (`storage_quota_exceeded`)", body = ErrorBody),
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
    // Paced: a body too slow is cut, so that it cannot hold its upload slot for nothing.
    let min_rate = state.settings.api.upload_min_rate();
    let paced = Paced::new(payload, min_rate);
    let too_slow = paced.too_slow();
    let body = paced.map(|chunk| {
        chunk.map_err(|e| match e {
            PaceError::Body(e) => e,
            slow @ PaceError::TooSlow { .. } => PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                slow.to_string(),
            )),
        })
    });
    let mut multipart = Multipart::new(req.headers(), body);
    let accepted = upload_into(
        &state,
        &auth,
        path.into_inner(),
        &req,
        &mut multipart,
        &request_id,
    )
    .await;
    if accepted.is_err()
        && too_slow.is_set()
        && let Some(rate) = min_rate
    {
        // Whatever the body's reader made of its end, it ended for being too slow (and is
        // not drained: it would be just as slow).
        return Err(ApiError::BodyTooSlow {
            need: rate.bytes_per_window,
            window_secs: rate.window.as_secs(),
        });
    }
    // Whatever refused the upload (busy replica, closed batch, a part too large), read what
    // is left of the body before answering: a server that answers mid-body and closes makes
    // the client, or a proxy streaming the body (nginx here), see a reset or a 502 instead
    // of the answer and its Retry-After. Not a body that is no multipart or broke as one:
    // it cannot be read on (and the multipart reader must not be polled past its error).
    if let Err(e) = &accepted
        && !matches!(
            e,
            ApiError::MalformedMultipart(_) | ApiError::UnsupportedMediaType { .. }
        )
    {
        drain(&mut multipart, state.settings.limits.drain_max_bytes).await;
    }
    accepted
}

async fn upload_into(
    state: &AppState,
    auth: &Authenticated,
    batch_id: Uuid,
    req: &HttpRequest,
    multipart: &mut Multipart,
    request_id: &RequestId,
) -> Result<HttpResponse, ApiError> {
    if !is_multipart(req) {
        return Err(ApiError::UnsupportedMediaType {
            expected: "multipart/form-data",
        });
    }
    let idempotency_key = idempotency_key(req)?;
    let batch = owned_batch(state, auth, batch_id).await?;
    let mut upload = StreamedUpload::start(state, &batch, auth.payer(), idempotency_key).await?;
    if let Err(e) = read_parts(multipart, &mut upload).await {
        upload.abandon().await;
        return Err(e);
    }
    let photos = upload.finish(&request_id.0).await?;
    Ok(HttpResponse::Accepted().json(accepted(&photos)))
}

/// Adds every part named `file` to the upload; other form fields carry nothing we use.
async fn read_parts(
    multipart: &mut Multipart,
    upload: &mut StreamedUpload<'_>,
) -> Result<(), ApiError> {
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(malformed)?;
        if field.name() != Some("file") {
            discard(&mut field).await.map_err(malformed)?;
            continue;
        }
        let filename = label(
            field.content_disposition().and_then(|cd| cd.get_filename()),
            &format!("photo-{}", upload.count() + 1),
        );
        let content_type = ImageMediaType::stored_as(field.content_type().map(|m| m.essence_str()));
        upload.add(filename, &content_type, &mut field).await?;
    }
    if upload.count() == 0 {
        return Err(ApiError::NoFiles);
    }
    Ok(())
}

/// Ask for presigned upload URLs, so browsers upload straight to the object store.
///
/// Each file gets a `PUT` URL signed for exactly its announced `size` (send the ticket's
/// headers, `Content-Length` among them: a body of another length is refused by the store);
/// after uploading, call `complete` for it. Tickets not yet completed (nor expired) count
/// against the batch's photo limit.
#[utoipa::path(
    tag = "photos",
    params(("batch_id" = Uuid, Path, description = "Batch id")),
    request_body(content = UploadsRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Upload URLs", body = UploadsCreated),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such batch for this session", body = ErrorBody),
        (status = 409, description = "Batch closed (`batch_closed`), photo limit reached, counting tickets handed out and not completed (`too_many_photos`), or the announced sizes would pass the bytes the session or its client address may keep (`storage_quota_exceeded`)", body = ErrorBody),
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
    let files = announced(&body, limits)?;
    let batch = owned_batch(&state, &auth, path.into_inner()).await?;
    let payer = auth.payer();
    let tickets = presigned::issue_tickets(&state, &batch, payer, files).await?;
    let uploads = tickets
        .into_iter()
        .map(|t| UploadTicket {
            photo_id: t.photo_id,
            method: t.upload.method,
            url: t.upload.url,
            headers: t.upload.headers.into_iter().collect(),
            expires_at: t.upload.expires_at,
        })
        .collect();
    Ok(HttpResponse::Created().json(UploadsCreated { uploads }))
}

/// The announced files, checked: 1 to `max_uploads_per_request` of them, each non-empty,
/// within the byte limit and of a plain `image/*` type.
fn announced(body: &UploadsRequest, limits: &LimitSettings) -> Result<Vec<Announced>, ApiError> {
    if body.files.is_empty() || body.files.len() > limits.max_uploads_per_request {
        return Err(ApiError::InvalidFiles(format!(
            "files must list 1 to {} files",
            limits.max_uploads_per_request
        )));
    }
    let mut files = Vec::with_capacity(body.files.len());
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
        let Some(content_type) = ImageMediaType::parse(&f.content_type) else {
            return Err(ApiError::InvalidFiles(format!(
                "content_type {:?} is not an image/* media type",
                f.content_type
            )));
        };
        files.push(Announced {
            filename: label(Some(&f.filename), "photo"),
            content_type: content_type.into_string(),
            size: f.size,
        });
    }
    Ok(files)
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
        (status = 413, description = "The uploaded object is larger than announced or than the byte limit (`file_too_large`); it is deleted", body = ErrorBody),
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
    let photo = presigned::complete(&state, &batch, photo_id, &request_id.0).await?;
    Ok(HttpResponse::Accepted().json(accepted(&[photo])))
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

fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Longest `Idempotency-Key` accepted (also stated in the OpenAPI document).
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 128;

/// The request's `Idempotency-Key`, if it sent one: 1 to 128 of `A-Z a-z 0-9 - _ . :`.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::InvalidIdempotencyKey)?;
    let sane = (1..=IDEMPOTENCY_KEY_MAX_LEN).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if sane {
        Ok(Some(key.to_owned()))
    } else {
        Err(ApiError::InvalidIdempotencyKey)
    }
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

fn malformed(e: impl std::fmt::Display) -> ApiError {
    ApiError::MalformedMultipart(e.to_string())
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
