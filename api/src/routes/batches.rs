use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use chrono::Utc;
use tirage_shared::keys;
use tirage_shared::model::{Batch, BatchOptions, BatchState, OutputFormat};
use tirage_shared::ports::WorkItem;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody, SessionErrors};
use crate::routes::{owned_batch, read_json};
use crate::startup::AppState;
use crate::views::{BatchView, CreateBatchRequest};

/// Longest accepted callback URL.
const MAX_URL_LEN: usize = 2048;

/// Turns the request into batch options, each bad field with its own code.
/// Field checks reuse `BatchOptions::validate`, so HTTP, CLI and workers agree on limits.
pub fn options_from(req: &CreateBatchRequest) -> Result<BatchOptions, ApiError> {
    let defaults = BatchOptions::default();
    let sizes = match &req.sizes {
        None => defaults.sizes.clone(),
        Some(sizes) => {
            let sizes = sizes
                .iter()
                .map(|&s| {
                    u32::try_from(s).map_err(|_| {
                        ApiError::InvalidSizes(format!(
                            "size {s} is outside {}..={}",
                            tirage_shared::model::MIN_SIZE,
                            tirage_shared::model::MAX_SIZE
                        ))
                    })
                })
                .collect::<Result<Vec<u32>, _>>()?;
            let probe = BatchOptions {
                sizes: sizes.clone(),
                ..defaults.clone()
            };
            probe.validate().map_err(|e| ApiError::InvalidSizes(e.0))?;
            sizes
        }
    };
    let format = match &req.format {
        None => defaults.format,
        Some(f) => f
            .parse::<OutputFormat>()
            .map_err(|e| ApiError::InvalidFormat(e.0))?,
    };
    let quality = match req.quality {
        None => defaults.quality,
        Some(q) => {
            let bad = || ApiError::InvalidQuality(format!("quality {q} is outside 1..=100"));
            let q = u8::try_from(q).map_err(|_| bad())?;
            BatchOptions {
                quality: q,
                ..defaults.clone()
            }
            .validate()
            .map_err(|_| bad())?;
            q
        }
    };
    let options = BatchOptions {
        sizes,
        format,
        quality,
    };
    options.validate().map_err(|e| ApiError::InvalidBody(e.0))?;
    Ok(options)
}

/// Rejects obviously unusable callback URLs. Resolving the host and refusing private
/// addresses (SSRF) is the worker's job, at call time, since DNS can change meanwhile.
pub fn check_callback_url(raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| Err(ApiError::InvalidCallbackUrl(format!("callback_url {why}")));
    if raw.len() > MAX_URL_LEN {
        return bad("is too long");
    }
    let url = match url::Url::parse(raw) {
        Ok(url) => url,
        Err(e) => return bad(&format!("is not a URL: {e}")),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return bad("must use http or https");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return bad("needs a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not carry credentials");
    }
    Ok(url.to_string())
}

/// Create a batch.
#[utoipa::path(
    tag = "batches",
    request_body(content = CreateBatchRequest, content_type = "application/json", description = "Every field is optional; an empty body takes the defaults"),
    responses(
        (status = 201, description = "Batch created", body = BatchView),
        (status = 400, description = "Malformed JSON (`malformed_json`)", body = ErrorBody),
        (status = 413, description = "Body too large (`body_too_large`)", body = ErrorBody),
        (status = 415, description = "Not JSON (`unsupported_media_type`)", body = ErrorBody),
        (status = 422, description = "Invalid value (`invalid_sizes`, `invalid_quality`, `invalid_format`, `invalid_callback_url`, `invalid_body`)", body = ErrorBody),
        SessionErrors,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/v1/batches")]
pub async fn create_batch(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: CreateBatchRequest = read_json(&req, payload, state.settings.limits.max_json_bytes)
        .await?
        .unwrap_or_default();
    let options = options_from(&body)?;
    let callback_url = body
        .callback_url
        .as_deref()
        .map(check_callback_url)
        .transpose()?;
    let now = Utc::now();
    let ttl = chrono::Duration::seconds(
        i64::try_from(state.settings.limits.batch_ttl_secs)
            .map_err(|_| ApiError::Internal("batch_ttl_secs out of range".into()))?,
    );
    let batch = Batch {
        id: Uuid::new_v4(),
        owner: auth.session.id.clone(),
        state: BatchState::Open,
        options,
        callback_url,
        total: 0,
        done: 0,
        failed: 0,
        created_at: now,
        expires_at: now + ttl,
    };
    state.deps.state.create_batch(&batch).await?;
    tracing::info!(batch_id = %batch.id, "batch created");
    Ok(HttpResponse::Created().json(BatchView::from(&batch)))
}

/// Get a batch and its counters.
#[utoipa::path(
    tag = "batches",
    params(("batch_id" = Uuid, Path, description = "Batch id")),
    responses(
        (status = 200, description = "The batch", body = BatchView),
        (status = 404, description = "No such batch for this session (`batch_not_found`)", body = ErrorBody),
        SessionErrors,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/v1/batches/{batch_id}")]
pub async fn get_batch(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let batch = owned_batch(&state, &auth, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(BatchView::from(&batch)))
}

/// Close a batch: it accepts no more photos and completes once done + failed = total.
#[utoipa::path(
    tag = "batches",
    params(("batch_id" = Uuid, Path, description = "Batch id")),
    responses(
        (status = 200, description = "The closed batch", body = BatchView),
        (status = 404, description = "No such batch for this session", body = ErrorBody),
        SessionErrors,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/v1/batches/{batch_id}/close")]
pub async fn close_batch(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let batch_id = path.into_inner();
    owned_batch(&state, &auth, batch_id).await?;
    let closed = state.deps.state.close_batch(batch_id).await?;
    // Whoever sees the batch complete hands its side effects to the workers. A close that
    // is retried after a failed publish sees `completed_now == false`, so it also publishes
    // while the event is not done yet: duplicates are harmless, a lost one is not.
    let completed = closed.batch.state == BatchState::Completed;
    if closed.completed_now
        || (completed && !state.deps.state.is_effect_done(batch_id, "event").await?)
    {
        state
            .deps
            .queue
            .publish(&WorkItem::FinalizeBatch { batch_id })
            .await?;
    }
    tracing::info!(batch_id = %batch_id, completed, "batch closed");
    Ok(HttpResponse::Ok().json(BatchView::from(&closed.batch)))
}

/// Delete a batch, its photos and renditions.
#[utoipa::path(
    tag = "batches",
    params(("batch_id" = Uuid, Path, description = "Batch id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such batch for this session", body = ErrorBody),
        SessionErrors,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/v1/batches/{batch_id}")]
pub async fn delete_batch(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let batch_id = path.into_inner();
    owned_batch(&state, &auth, batch_id).await?;
    let prefix = keys::batch_prefix(batch_id);
    // Objects first: if the state went first and the object deletion failed, nothing would
    // remember the objects and a retry would 404.
    let removed = state.deps.objects.delete_prefix(&prefix).await?;
    state.deps.state.delete_batch(batch_id).await?;
    // A worker that was mid-job may have written renditions between the two calls.
    let late = match state.deps.objects.delete_prefix(&prefix).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(batch_id = %batch_id, error = %e, "second object sweep failed; objects expire with the bucket's lifecycle");
            0
        }
    };
    tracing::info!(batch_id = %batch_id, objects = removed + late, "batch deleted");
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: serde_json::Value) -> CreateBatchRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn options_default_and_codes_name_the_field() {
        let o = options_from(&CreateBatchRequest::default()).unwrap();
        assert_eq!(o, BatchOptions::default());
        let code = |j| options_from(&req(j)).unwrap_err().code();
        assert_eq!(code(serde_json::json!({"sizes": []})), "invalid_sizes");
        assert_eq!(code(serde_json::json!({"sizes": [15]})), "invalid_sizes");
        assert_eq!(code(serde_json::json!({"sizes": [-1]})), "invalid_sizes");
        assert_eq!(
            code(serde_json::json!({"sizes": [100,200,300,400,500,600,700,800,900]})),
            "invalid_sizes"
        );
        assert_eq!(code(serde_json::json!({"quality": 0})), "invalid_quality");
        assert_eq!(code(serde_json::json!({"quality": 300})), "invalid_quality");
        assert_eq!(code(serde_json::json!({"format": "gif"})), "invalid_format");
        let o = options_from(&req(
            serde_json::json!({"sizes": [16, 8192], "format": "webp", "quality": 1}),
        ))
        .unwrap();
        assert_eq!(o.sizes, vec![16, 8192]);
        assert_eq!(o.format, OutputFormat::Webp);
    }

    #[test]
    fn callback_urls_must_be_plain_http() {
        assert!(check_callback_url("https://example.com/hook").is_ok());
        assert!(check_callback_url("http://example.com:8080/h?x=1").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "not a url",
            "http://user:pw@example.com/",
            "http://",
            "mailto:a@example.com",
        ] {
            assert_eq!(
                check_callback_url(bad).unwrap_err().code(),
                "invalid_callback_url",
                "{bad}"
            );
        }
        assert!(check_callback_url(&format!("https://example.com/{}", "a".repeat(3000))).is_err());
    }
}
