//! The embedded object store's presigned URLs (`PUT`/`GET /v1/objects/{key}?expires=&signature=`),
//! answered by the API itself. In production the object store is S3 and clients talk to it
//! directly; `tirage standalone` keeps objects in a directory, so the URLs its
//! [`FsObjectStore`] signs point back here. Registered only when such a store is handed to
//! [`crate::Application::build_embedded`]; no session is needed, the signature is the
//! credential, exactly as with S3.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, put, web};
use serde::Deserialize;
use tirage_core::model::ImageMediaType;
use tirage_embedded::{FsObjectStore, PresignError};
use tirage_ports::{ObjectStore, ObjectStoreError};

use crate::body::pump;
use crate::error::ApiError;
use crate::state::AppState;

/// Adds the object routes when the API runs on the file-system store.
pub fn configure(cfg: &mut web::ServiceConfig, store: Option<Arc<FsObjectStore>>) {
    if let Some(store) = store {
        cfg.app_data(web::Data::from(store))
            .service(put_object)
            .service(get_object);
    }
}

#[derive(Debug, Deserialize)]
pub struct PresignQuery {
    pub expires: i64,
    /// A PUT's signed body length.
    pub length: Option<u64>,
    pub signature: String,
}

/// A presigned URL that does not verify answers 403, as S3 does.
impl From<PresignError> for ApiError {
    fn from(err: PresignError) -> Self {
        match err {
            PresignError::InvalidKey => ApiError::InvalidKey,
            PresignError::Expired => ApiError::UrlExpired,
            PresignError::BadSignature => ApiError::UrlSignatureInvalid,
        }
    }
}

/// Upload an object to a URL the store presigned (`POST /uploads` hands them out). As S3
/// does with a signed `Content-Length`, the body must be exactly the signed length: another
/// `Content-Length` (or none) is a bad signature, and the body is cut off past it.
#[put("/v1/objects/{key:.*}")]
pub async fn put_object(
    state: web::Data<AppState>,
    store: web::Data<FsObjectStore>,
    key: web::Path<String>,
    query: web::Query<PresignQuery>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = key.into_inner();
    store.verify_presigned("PUT", &key, query.expires, query.length, &query.signature)?;
    let signed = query.length.ok_or(PresignError::BadSignature)?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared != Some(signed) {
        return Err(PresignError::BadSignature.into());
    }
    // Refused before a byte is stored when the byte limit shrank since the URL was signed.
    let limit = state.settings.limits.max_file_bytes;
    if signed > limit {
        return Err(ApiError::FileTooLarge { limit });
    }
    let content_type = ImageMediaType::stored_as(
        req.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let size = pump(&mut payload, |body| {
        store.put_stream(&key, body, &content_type, signed)
    })
    .await
    .map_err(ApiError::from)?;
    state.metrics.upload_bytes.inc_by(size);
    tracing::info!(key, bytes = size, "presigned upload stored");
    Ok(HttpResponse::Ok().finish())
}

/// Download an object from a URL the store presigned (renditions in `redirect` mode).
#[get("/v1/objects/{key:.*}")]
pub async fn get_object(
    store: web::Data<FsObjectStore>,
    key: web::Path<String>,
    query: web::Query<PresignQuery>,
) -> Result<HttpResponse, ApiError> {
    let key = key.into_inner();
    store.verify_presigned("GET", &key, query.expires, None, &query.signature)?;
    let not_found = |e: ObjectStoreError| match e {
        ObjectStoreError::NotFound(_) => ApiError::ObjectNotFound,
        other => ApiError::from(other),
    };
    let meta = store
        .head(&key)
        .await
        .map_err(not_found)?
        .ok_or(ApiError::ObjectNotFound)?;
    let bytes = store.get(&key).await.map_err(not_found)?;
    Ok(HttpResponse::Ok()
        .content_type(
            meta.content_type
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
        )
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use actix_web::http::StatusCode;

    #[test]
    fn refused_urls_answer_403_and_a_missing_object_404() {
        let refused = [
            (PresignError::InvalidKey, "invalid_key"),
            (PresignError::Expired, "presign_expired"),
            (PresignError::BadSignature, "bad_signature"),
        ];
        for (err, code) in refused {
            let err = ApiError::from(err);
            assert_eq!(err.code(), code);
            assert_eq!(err.status_code(), StatusCode::FORBIDDEN);
        }
        assert_eq!(
            ApiError::ObjectNotFound.status_code(),
            StatusCode::NOT_FOUND
        );
    }
}
