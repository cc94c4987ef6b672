//! The API's one error type. Every failure a handler can meet becomes an [`ApiError`]; its
//! stable `code()` is what clients match on, and [`ERROR_CODES`] is the single table that maps
//! those codes to HTTP statuses (and documents them in the OpenAPI description).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use tirage_core::wire::ErrorBody;
use tirage_ports::completion::HandOffError;
use tirage_ports::{ObjectStoreError, QueueError, StateError};
use uuid::Uuid;

/// Every error code the API answers with, and its HTTP status. Clients match on the code,
/// never on the message, so codes are never renamed.
pub const ERROR_CODES: &[(&str, u16)] = &[
    ("malformed_json", 400),
    ("malformed_query", 400),
    ("malformed_multipart", 400),
    ("missing_credentials", 401),
    ("invalid_session", 401),
    ("invalid_api_key", 401),
    ("invalid_key", 403),
    ("presign_expired", 403),
    ("bad_signature", 403),
    ("not_found", 404),
    ("batch_not_found", 404),
    ("photo_not_found", 404),
    ("rendition_not_found", 404),
    ("upload_not_found", 404),
    ("object_not_found", 404),
    ("unknown_size", 404),
    ("method_not_allowed", 405),
    ("batch_closed", 409),
    ("too_many_photos", 409),
    ("too_many_open_batches", 409),
    ("upload_missing", 409),
    ("file_too_large", 413),
    ("body_too_large", 413),
    ("unsupported_media_type", 415),
    ("range_not_satisfiable", 416),
    ("invalid_body", 422),
    ("invalid_sizes", 422),
    ("invalid_quality", 422),
    ("invalid_format", 422),
    ("invalid_metadata", 422),
    ("invalid_callback_url", 422),
    ("invalid_files", 422),
    ("invalid_limit", 422),
    ("invalid_cursor", 422),
    ("invalid_idempotency_key", 422),
    ("no_files", 422),
    ("empty_file", 422),
    ("rate_limited", 429),
    ("too_many_streams", 429),
    ("too_many_sessions", 429),
    ("internal_error", 500),
    ("state_store_unavailable", 503),
    ("object_store_unavailable", 503),
    ("job_queue_unavailable", 503),
    ("job_queue_rejected", 503),
    ("dependency_unavailable", 503),
    ("server_busy", 503),
];

/// The HTTP status of an error code, from [`ERROR_CODES`]; 500 for a code missing from it
/// (a unit test makes sure none is).
pub fn status_of(code: &str) -> StatusCode {
    ERROR_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .and_then(|(_, status)| StatusCode::from_u16(*status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("malformed query string: {0}")]
    MalformedQuery(String),
    #[error("malformed multipart body: {0}")]
    MalformedMultipart(String),
    /// A size the batch did not ask for, named in a query (`?sizes=` of the archive).
    #[error("{0}")]
    UnknownSize(String),

    #[error("send `Authorization: Bearer <token>` or the tirage_session cookie")]
    MissingCredentials,
    #[error("unknown or expired session")]
    InvalidSession,
    #[error("a valid X-Api-Key header is required to create a session")]
    InvalidApiKey,

    #[error("no such resource")]
    NotFound,
    #[error("batch not found")]
    BatchNotFound,
    #[error("photo not found")]
    PhotoNotFound,
    #[error("{0}")]
    RenditionNotFound(String),
    #[error("no pending upload for this photo")]
    UploadNotFound,
    /// The path exists, the method does not; `allow` lists the ones it has (`GET, POST`).
    #[error("this path answers only {allow}")]
    MethodNotAllowed { allow: String },

    #[error("the batch is closed and accepts no more photos")]
    BatchClosed,
    #[error("the batch would exceed its limit of {limit} photos (uploads handed out count)")]
    TooManyPhotos { limit: u64 },
    #[error("this session already has {limit} open batches; close or delete one first")]
    TooManyOpenBatches { limit: u32 },
    #[error("nothing was uploaded for photo {0}")]
    UploadMissing(Uuid),

    #[error("a file exceeds the limit of {limit} bytes")]
    FileTooLarge { limit: u64 },
    #[error("the request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("this endpoint needs Content-Type: {expected}")]
    UnsupportedMediaType { expected: &'static str },

    #[error("invalid request body: {0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidSizes(String),
    #[error("{0}")]
    InvalidQuality(String),
    #[error("{0}")]
    InvalidFormat(String),
    #[error("{0}")]
    InvalidMetadata(String),
    #[error("{0}")]
    InvalidCallbackUrl(String),
    #[error("{0}")]
    InvalidFiles(String),
    #[error("{0}")]
    InvalidLimit(String),
    #[error("the cursor is not one this API handed out")]
    InvalidCursor,
    #[error("Idempotency-Key must be 1 to 128 of A-Z a-z 0-9 - _ . :")]
    InvalidIdempotencyKey,
    #[error("the upload holds no part named `file`")]
    NoFiles,
    #[error("the part for {0:?} is empty")]
    EmptyFile(String),

    #[error("the URL's signature does not match")]
    UrlSignatureInvalid,
    #[error("the signed URL has expired")]
    UrlExpired,
    #[error("the range starts past the end of the {size} bytes")]
    RangeNotSatisfiable { size: u64 },

    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("this session already holds {limit} event streams; close one first")]
    TooManyStreams { limit: u32 },
    #[error("this address created {limit} sessions within one session lifetime; reuse one")]
    TooManySessions { limit: u32 },
    #[error("this server is at its limit of concurrent uploads; retry in {retry_after_secs} s")]
    ServerBusy { retry_after_secs: u64 },

    /// The detail is logged, never sent: it may name internal hosts.
    #[error("internal error")]
    Internal(String),
    #[error("the state store is unavailable; retry later")]
    StateUnavailable(String),
    #[error("the object store is unavailable; retry later")]
    ObjectStoreUnavailable(String),
    #[error("the job queue is unavailable; retry later")]
    QueueUnavailable(String),
    #[error("the job queue refused a job; retry later")]
    QueueRejected(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::MalformedQuery(_) => "malformed_query",
            ApiError::MalformedMultipart(_) => "malformed_multipart",
            ApiError::UnknownSize(_) => "unknown_size",
            ApiError::MissingCredentials => "missing_credentials",
            ApiError::InvalidSession => "invalid_session",
            ApiError::InvalidApiKey => "invalid_api_key",
            ApiError::NotFound => "not_found",
            ApiError::BatchNotFound => "batch_not_found",
            ApiError::PhotoNotFound => "photo_not_found",
            ApiError::RenditionNotFound(_) => "rendition_not_found",
            ApiError::UploadNotFound => "upload_not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::BatchClosed => "batch_closed",
            ApiError::TooManyPhotos { .. } => "too_many_photos",
            ApiError::TooManyOpenBatches { .. } => "too_many_open_batches",
            ApiError::UploadMissing(_) => "upload_missing",
            ApiError::FileTooLarge { .. } => "file_too_large",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::InvalidSizes(_) => "invalid_sizes",
            ApiError::InvalidQuality(_) => "invalid_quality",
            ApiError::InvalidFormat(_) => "invalid_format",
            ApiError::InvalidMetadata(_) => "invalid_metadata",
            ApiError::InvalidCallbackUrl(_) => "invalid_callback_url",
            ApiError::InvalidFiles(_) => "invalid_files",
            ApiError::InvalidLimit(_) => "invalid_limit",
            ApiError::InvalidCursor => "invalid_cursor",
            ApiError::InvalidIdempotencyKey => "invalid_idempotency_key",
            ApiError::NoFiles => "no_files",
            ApiError::EmptyFile(_) => "empty_file",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TooManyStreams { .. } => "too_many_streams",
            ApiError::TooManySessions { .. } => "too_many_sessions",
            ApiError::ServerBusy { .. } => "server_busy",
            ApiError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            ApiError::UrlSignatureInvalid => "bad_signature",
            ApiError::UrlExpired => "presign_expired",
            ApiError::Internal(_) => "internal_error",
            ApiError::StateUnavailable(_) => "state_store_unavailable",
            ApiError::ObjectStoreUnavailable(_) => "object_store_unavailable",
            ApiError::QueueUnavailable(_) => "job_queue_unavailable",
            ApiError::QueueRejected(_) => "job_queue_rejected",
        }
    }

    /// What went wrong inside, for the logs of 5xx answers (never sent to the client).
    fn detail(&self) -> Option<&str> {
        match self {
            ApiError::Internal(d)
            | ApiError::StateUnavailable(d)
            | ApiError::ObjectStoreUnavailable(d)
            | ApiError::QueueUnavailable(d)
            | ApiError::QueueRejected(d) => Some(d),
            _ => None,
        }
    }
}

/// The answers every authenticated `/v1` endpoint may give, documented once.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only a description for the OpenAPI document; never built.
pub enum SessionErrors {
    /// No valid session: `missing_credentials`, `invalid_session`.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Too many requests for this session: `rate_limited`, with `Retry-After` in seconds.
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// A dependency is down (`state_store_unavailable`, `object_store_unavailable`,
    /// `job_queue_unavailable`, `job_queue_rejected`), or, on a multipart upload, this
    /// replica streams its maximum of uploads already (`server_busy`, with `Retry-After` in
    /// seconds); repeating the request later is safe.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self.code())
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let Some(detail) = self.detail() {
            tracing::error!(
                code = self.code(),
                status = status.as_u16(),
                detail,
                "request failed"
            );
        }
        let mut response = HttpResponse::build(status);
        if let ApiError::RateLimited { retry_after_secs }
        | ApiError::ServerBusy { retry_after_secs } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.insert_header((header::RETRY_AFTER, value));
        }
        if let ApiError::RangeNotSatisfiable { size } = self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            response.insert_header((header::CONTENT_RANGE, value));
        }
        if let ApiError::MethodNotAllowed { allow } = self
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            response.insert_header((header::ALLOW, value));
        }
        response.json(ErrorBody::new(self.code(), self.to_string()))
    }
}

impl From<StateError> for ApiError {
    fn from(err: StateError) -> Self {
        match err {
            StateError::Unavailable(d) => ApiError::StateUnavailable(d),
            StateError::NotFound => ApiError::BatchNotFound,
            StateError::BatchClosed => ApiError::BatchClosed,
            StateError::TooManyPhotos { limit } => ApiError::TooManyPhotos { limit },
            StateError::Corrupt(d) => ApiError::Internal(format!("corrupt state: {d}")),
        }
    }
}

impl From<ObjectStoreError> for ApiError {
    fn from(err: ObjectStoreError) -> Self {
        match err {
            ObjectStoreError::TooLarge { limit } => ApiError::FileTooLarge { limit },
            ObjectStoreError::Body(d) => ApiError::MalformedMultipart(d),
            ObjectStoreError::Unavailable(d) => ApiError::ObjectStoreUnavailable(d),
            ObjectStoreError::NotFound(key) => ApiError::Internal(format!("object {key} vanished")),
            ObjectStoreError::Unsupported(d) => ApiError::Internal(d),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        match err {
            QueueError::Unavailable(d) => ApiError::QueueUnavailable(d),
            QueueError::Rejected(d) => ApiError::QueueRejected(d),
        }
    }
}

impl From<HandOffError> for ApiError {
    fn from(err: HandOffError) -> Self {
        match err {
            HandOffError::State(e) => e.into(),
            HandOffError::Queue(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests;
