//! Batches: create, read, close, delete. The request's options are checked here, each bad
//! field with its own code; what happens to the batch is [`crate::usecases::batches`].

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use tirage_core::model::BatchOptions;
use tirage_core::wire::{BatchView, CreateBatchRequest, ErrorBody};
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::{ApiError, SessionErrors};
use crate::extract::{owned_batch, read_json};
use crate::state::AppState;
use crate::usecases::batches;

/// Longest accepted callback URL (also stated in the OpenAPI document).
pub const MAX_CALLBACK_URL_LEN: usize = 2048;

/// Turns the request into batch options, each bad field with its own code. The checks are
/// `tirage-core`'s, so HTTP, CLI and workers agree on limits.
pub fn options_from(req: &CreateBatchRequest) -> Result<BatchOptions, ApiError> {
    req.options().map_err(ApiError::from)
}

/// Rejects obviously unusable callback URLs. Resolving the host and refusing private
/// addresses (SSRF) is the worker's job, at call time, since DNS can change meanwhile.
pub fn check_callback_url(raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| Err(ApiError::InvalidCallbackUrl(format!("callback_url {why}")));
    if raw.len() > MAX_CALLBACK_URL_LEN {
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
    request_body(content = Option<CreateBatchRequest>, content_type = "application/json", description = "Optional, as is every field: no body at all takes the defaults"),
    responses(
        (status = 201, description = "Batch created", body = BatchView),
        (status = 400, description = "Malformed JSON (`malformed_json`)", body = ErrorBody),
        (status = 413, description = "Body too large (`body_too_large`)", body = ErrorBody),
        (status = 415, description = "Not JSON (`unsupported_media_type`)", body = ErrorBody),
        (status = 409, description = "The session has as many open batches as it may (`too_many_open_batches`): close or delete one", body = ErrorBody),
        (status = 429, description = "The session, or its client address across its sessions, created as many batches within the hour as it may, closed ones included (`batch_quota_exceeded`, with `Retry-After`)", body = ErrorBody),
        (status = 422, description = "Invalid value (`invalid_sizes`, `invalid_quality`, `invalid_format`, `invalid_metadata`, `invalid_callback_url`, `invalid_body`)", body = ErrorBody),
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
    // The body is optional, and so documented: none at all, or `null`, takes the defaults.
    let body: CreateBatchRequest = read_json::<Option<CreateBatchRequest>>(
        &req,
        payload,
        state.settings.limits.max_json_bytes,
    )
    .await?
    .flatten()
    .unwrap_or_default();
    let options = options_from(&body)?;
    let callback_url = body
        .callback_url
        .as_deref()
        .map(check_callback_url)
        .transpose()?;
    let batch = batches::create(
        &state,
        auth.session.id.clone(),
        &auth.address,
        options,
        callback_url,
    )
    .await?;
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
    let closed = batches::close(&state, batch_id).await?;
    Ok(HttpResponse::Ok().json(BatchView::from(&closed)))
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
    batches::delete(&state, batch_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tirage_core::model::{MetadataChoice, OutputFormat};

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
        assert_eq!(
            code(serde_json::json!({"metadata": "gps"})),
            "invalid_metadata"
        );
        let o = options_from(&req(
            serde_json::json!({"sizes": [16, 8192], "format": "webp", "quality": 1, "metadata": "copyright"}),
        ))
        .unwrap();
        assert_eq!(o.sizes, vec![16, 8192]);
        assert_eq!(o.format, OutputFormat::Webp);
        assert_eq!(o.metadata, MetadataChoice::Copyright);
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
