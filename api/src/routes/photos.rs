use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use tirage_core::model::{Batch, PhotoRecord};
use tirage_core::wire::{ErrorBody, PageQuery, PhotoList, PhotoView};
use tirage_ports::StateError;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::conditional;
use crate::error::{ApiError, SessionErrors};
use crate::extract::owned_batch;
use crate::settings::RenditionDelivery;
use crate::state::AppState;
use crate::usecases::renditions;

/// Cursors are the page offsets the state store hands out as `next_cursor`: a decimal
/// number without leading zeros, of at most this many digits (also stated in the OpenAPI
/// document). Anything else was never handed out.
pub const MAX_CURSOR_DIGITS: usize = 18;

fn is_cursor(c: &str) -> bool {
    c == "0"
        || ((1..=MAX_CURSOR_DIGITS).contains(&c.len())
            && !c.starts_with('0')
            && c.bytes().all(|b| b.is_ascii_digit()))
}

/// List a batch's photos, in upload order, a page at a time.
#[utoipa::path(
    tag = "photos",
    params(("batch_id" = Uuid, Path, description = "Batch id"), PageQuery),
    responses(
        (status = 200, description = "A page of photos", body = PhotoList),
        (status = 400, description = "Unparsable query (`malformed_query`)", body = ErrorBody),
        (status = 404, description = "No such batch for this session", body = ErrorBody),
        (status = 422, description = "`invalid_limit` or `invalid_cursor`", body = ErrorBody),
        SessionErrors,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/v1/batches/{batch_id}/photos")]
pub async fn list_photos(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limits = &state.settings.limits;
    let limit = query.limit.unwrap_or(limits.page_default);
    if limit == 0 || limit > limits.page_max {
        return Err(ApiError::InvalidLimit(format!(
            "limit must be within 1..={}",
            limits.page_max
        )));
    }
    let cursor = query.cursor.as_deref().filter(|c| !c.is_empty());
    if cursor.is_some_and(|c| !is_cursor(c)) {
        return Err(ApiError::InvalidCursor);
    }
    let batch = owned_batch(&state, &auth, path.into_inner()).await?;
    let page = match state.ports.state.list_photos(batch.id, cursor, limit).await {
        Ok(page) => page,
        // The batch was just found, so a page the store cannot find or read comes from a
        // cursor it never handed out: the client's mistake.
        Err(StateError::NotFound | StateError::Corrupt(_)) if cursor.is_some() => {
            return Err(ApiError::InvalidCursor);
        }
        Err(e) => return Err(e.into()),
    };
    let expires = batch.expires_at.timestamp();
    let view = |p: &PhotoRecord| {
        let mut view = PhotoView::new(batch.id, p);
        if let Some(urls) = &state.rendition_urls {
            for out in &mut view.outputs {
                out.public_url = Some(urls.path(batch.id, p.id, out.size, expires));
            }
        }
        view
    };
    Ok(HttpResponse::Ok().json(PhotoList {
        photos: page.photos.iter().map(view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Get one rendition: its bytes, or a 307 to a short-lived presigned URL (per configuration).
///
/// Served as a static file is: a strong `ETag` (renditions never change once written),
/// `304` when `If-None-Match` names it, and one byte range per request with `Range`
/// (`206`, `If-Range` honoured; `416` past the end).
#[utoipa::path(
    tag = "photos",
    params(
        ("batch_id" = Uuid, Path, description = "Batch id"),
        ("photo_id" = Uuid, Path, description = "Photo id"),
        ("size" = u32, Path, description = "One of the batch's sizes"),
        ("Range" = Option<String>, Header, description = "One range, `bytes=first-last`, `bytes=first-` or `bytes=-suffix`; several ranges get the whole body"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds: 304 when it is current"),
        ("If-Range" = Option<String>, Header, description = "The `ETag` the range belongs to: the whole body when it is not current"),
    ),
    responses(
        (status = 200, description = "The image, with its strong `ETag` and `Accept-Ranges: bytes`", content_type = "image/*"),
        (status = 206, description = "The requested bytes of the image, with `Content-Range`", content_type = "image/*"),
        (status = 304, description = "The client's copy (its `If-None-Match`) is current"),
        (status = 307, description = "Redirect to a presigned URL"),
        (status = 404, description = "No such batch, photo or rendition (not done yet, failed, or size not in the batch)", body = ErrorBody),
        (status = 416, description = "The range starts past the end (`range_not_satisfiable`, with `Content-Range: bytes */size`)", body = ErrorBody),
        SessionErrors,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/v1/batches/{batch_id}/photos/{photo_id}/{size}")]
pub async fn get_rendition(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(Uuid, Uuid, u32)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (batch_id, photo_id, size) = path.into_inner();
    let batch = owned_batch(&state, &auth, batch_id).await?;
    serve(&state, &req, &batch, photo_id, size, Audience::Session).await
}

/// The parts of a signed rendition URL's query.
#[derive(Debug, Deserialize)]
pub struct SignedQuery {
    pub expires: i64,
    pub signature: String,
}

/// Get one rendition through a signed URL: no session needed, cacheable by a CDN.
///
/// The `public_url` of each output in a photo listing, when the server signs rendition URLs
/// (`[api] signed_rendition_urls`). Served like the session's URL, but `Cache-Control:
/// public` until `expires` (the batch's expiry), and never redirected.
#[utoipa::path(
    tag = "photos",
    params(
        ("batch_id" = Uuid, Path, description = "Batch id"),
        ("photo_id" = Uuid, Path, description = "Photo id"),
        ("size" = u32, Path, description = "One of the batch's sizes"),
        ("expires" = i64, Query, description = "Unix time the URL stops working (the batch's expiry)"),
        ("signature" = String, Query, description = "HMAC-SHA256 of the other parts, hex"),
        ("Range" = Option<String>, Header, description = "As for the session's rendition URL"),
        ("If-None-Match" = Option<String>, Header, description = "As for the session's rendition URL"),
    ),
    responses(
        (status = 200, description = "The image, `Cache-Control: public, immutable`", content_type = "image/*"),
        (status = 206, description = "The requested bytes of the image", content_type = "image/*"),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "`expires` or `signature` missing or malformed (`malformed_query`)", body = ErrorBody),
        (status = 403, description = "A signature that does not match (`bad_signature`) or an expired URL (`presign_expired`)", body = ErrorBody),
        (status = 404, description = "No such batch (expired or deleted), photo or rendition", body = ErrorBody),
        (status = 416, description = "The range starts past the end (`range_not_satisfiable`)", body = ErrorBody),
        (status = 503, description = "A dependency is down (`state_store_unavailable`, `object_store_unavailable`)", body = ErrorBody),
    )
)]
#[get("/v1/renditions/{batch_id}/{photo_id}/{size}")]
pub async fn get_signed_rendition(
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid, u32)>,
    query: web::Query<SignedQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (batch_id, photo_id, size) = path.into_inner();
    // Without a key nothing is signed, so nothing can be verified.
    let urls = state.rendition_urls.as_ref().ok_or(ApiError::NotFound)?;
    let now = state.clock.now().timestamp();
    urls.verify(
        batch_id,
        photo_id,
        size,
        query.expires,
        &query.signature,
        now,
    )?;
    let batch = state
        .ports
        .state
        .get_batch(batch_id)
        .await?
        .ok_or(ApiError::BatchNotFound)?;
    serve(&state, &req, &batch, photo_id, size, Audience::Public).await
}

/// Who a rendition answer is for: the session that owns the batch (its browser may keep
/// it), or anyone holding a signed URL (shared caches may keep it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audience {
    Session,
    Public,
}

/// Answers a GET of one rendition of `batch`: a redirect when configured (session URLs
/// only), else the bytes, whole or one range, or 304.
async fn serve(
    state: &AppState,
    req: &HttpRequest,
    batch: &Batch,
    photo_id: Uuid,
    size: u32,
    audience: Audience,
) -> Result<HttpResponse, ApiError> {
    let found = renditions::find(state, batch, photo_id, size).await?;
    let (rendition, key) = (&found.rendition, &found.key);
    if audience == Audience::Session && state.settings.api.renditions == RenditionDelivery::Redirect
    {
        let presigned = state
            .ports
            .objects
            .presign_get(key, state.settings.api.presign_ttl())
            .await?;
        return Ok(HttpResponse::TemporaryRedirect()
            .insert_header((header::LOCATION, presigned.url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish());
    }
    let etag = rendition.digest.as_deref().map(conditional::entity_tag);
    // Immutable for as long as the batch lives.
    let max_age = (batch.expires_at - state.clock.now()).num_seconds().max(0);
    let scope = match audience {
        Audience::Session => "private",
        Audience::Public => "public",
    };
    let response = |status: StatusCode| {
        let mut r = HttpResponse::build(status);
        r.insert_header((
            header::CACHE_CONTROL,
            format!("{scope}, max-age={max_age}, immutable"),
        ))
        .insert_header((header::ACCEPT_RANGES, "bytes"));
        if let Some(etag) = &etag {
            r.insert_header((header::ETAG, etag.clone()));
        }
        r
    };
    let part = match conditional::wanted(req, etag.as_deref(), rendition.bytes) {
        conditional::Wanted::NotModified => {
            return Ok(response(StatusCode::NOT_MODIFIED).finish());
        }
        conditional::Wanted::Unsatisfiable => {
            return Err(ApiError::RangeNotSatisfiable {
                size: rendition.bytes,
            });
        }
        conditional::Wanted::Whole => None,
        conditional::Wanted::Part(range) => Some(range),
    };
    let object = renditions::open(state, &found, part.clone()).await?;
    let mut answer = match &part {
        None => response(StatusCode::OK),
        Some(range) => {
            let mut r = response(StatusCode::PARTIAL_CONTENT);
            r.insert_header((
                header::CONTENT_RANGE,
                conditional::content_range(range, rendition.bytes),
            ));
            r
        }
    };
    Ok(answer
        .content_type(batch.options.format.content_type())
        .no_chunking(object.size)
        .streaming(object.stream))
}
