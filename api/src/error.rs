//! The API's one error type. Every failure a handler can meet becomes an [`ApiError`]; its
//! `code()` is an [`ErrorCode`], whose one table (in `tirage-core`) gives the stable name
//! clients match on and the HTTP status (and documents both in the OpenAPI description).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use tirage_core::codes::ErrorCode;
use tirage_core::model::InvalidOptions;
use tirage_core::wire::ErrorBody;
use tirage_ports::completion::HandOffError;
use tirage_ports::{ObjectStoreError, QueueError, StateError};
use uuid::Uuid;

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
    #[error("no object at this key")]
    ObjectNotFound,
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
    #[error(
        "this {payer} keeps {held} bytes of the {cap} it may, and these files would pass that; delete batches it no longer needs (their bytes count until their objects are removed)"
    )]
    StorageQuotaExceeded {
        payer: &'static str,
        held: u64,
        cap: u64,
    },

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

    #[error("the URL names no object key it may name")]
    InvalidKey,
    #[error("the URL's signature does not match")]
    UrlSignatureInvalid,
    #[error("the signed URL has expired")]
    UrlExpired,
    #[error("the range starts past the end of the {size} bytes")]
    RangeNotSatisfiable { size: u64 },

    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error(
        "this session, or its address across its sessions, created {limit} batches within the hour; retry in {retry_after_secs} s"
    )]
    BatchQuotaExceeded { limit: u32, retry_after_secs: u64 },
    #[error("this {scope} already holds {limit} event streams; close one first")]
    TooManyStreams { scope: &'static str, limit: u32 },
    #[error("this {scope} already downloads {limit} archives; wait for one to end")]
    TooManyArchives { scope: &'static str, limit: u32 },
    #[error(
        "this session already streams {limit} uploads through this server; retry in {retry_after_secs} s"
    )]
    TooManyUploads { limit: usize, retry_after_secs: u64 },
    #[error("this address created {limit} sessions within one session lifetime; reuse one")]
    TooManySessions { limit: u32 },
    #[error("this server is at its limit of concurrent uploads; retry in {retry_after_secs} s")]
    ServerBusy { retry_after_secs: u64 },
    #[error(
        "the upload body brought less than {need} bytes in {window_secs} s; send faster, or upload through presigned URLs"
    )]
    BodyTooSlow { need: u64, window_secs: u64 },

    /// The detail is logged, never sent: it may name internal hosts.
    #[error("internal error")]
    Internal(String),
    #[error("the state store is unavailable; retry later")]
    StateUnavailable(String),
    #[error("the service's state store is full; retry later")]
    StateFull(String),
    #[error("the object store is unavailable; retry later")]
    ObjectStoreUnavailable(String),
    #[error("the job queue is unavailable; retry later")]
    QueueUnavailable(String),
    #[error("the job queue refused a job; retry later")]
    QueueRejected(String),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::MalformedJson(_) => ErrorCode::MalformedJson,
            ApiError::MalformedQuery(_) => ErrorCode::MalformedQuery,
            ApiError::MalformedMultipart(_) => ErrorCode::MalformedMultipart,
            ApiError::UnknownSize(_) => ErrorCode::UnknownSize,
            ApiError::MissingCredentials => ErrorCode::MissingCredentials,
            ApiError::InvalidSession => ErrorCode::InvalidSession,
            ApiError::InvalidApiKey => ErrorCode::InvalidApiKey,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::BatchNotFound => ErrorCode::BatchNotFound,
            ApiError::PhotoNotFound => ErrorCode::PhotoNotFound,
            ApiError::RenditionNotFound(_) => ErrorCode::RenditionNotFound,
            ApiError::UploadNotFound => ErrorCode::UploadNotFound,
            ApiError::ObjectNotFound => ErrorCode::ObjectNotFound,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::BodyTooSlow { .. } => ErrorCode::BodyTooSlow,
            ApiError::BatchClosed => ErrorCode::BatchClosed,
            ApiError::TooManyPhotos { .. } => ErrorCode::TooManyPhotos,
            ApiError::TooManyOpenBatches { .. } => ErrorCode::TooManyOpenBatches,
            ApiError::UploadMissing(_) => ErrorCode::UploadMissing,
            ApiError::StorageQuotaExceeded { .. } => ErrorCode::StorageQuotaExceeded,
            ApiError::FileTooLarge { .. } => ErrorCode::FileTooLarge,
            ApiError::BodyTooLarge { .. } => ErrorCode::BodyTooLarge,
            ApiError::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            ApiError::InvalidBody(_) => ErrorCode::InvalidBody,
            ApiError::InvalidSizes(_) => ErrorCode::InvalidSizes,
            ApiError::InvalidQuality(_) => ErrorCode::InvalidQuality,
            ApiError::InvalidFormat(_) => ErrorCode::InvalidFormat,
            ApiError::InvalidMetadata(_) => ErrorCode::InvalidMetadata,
            ApiError::InvalidCallbackUrl(_) => ErrorCode::InvalidCallbackUrl,
            ApiError::InvalidFiles(_) => ErrorCode::InvalidFiles,
            ApiError::InvalidLimit(_) => ErrorCode::InvalidLimit,
            ApiError::InvalidCursor => ErrorCode::InvalidCursor,
            ApiError::InvalidIdempotencyKey => ErrorCode::InvalidIdempotencyKey,
            ApiError::NoFiles => ErrorCode::NoFiles,
            ApiError::EmptyFile(_) => ErrorCode::EmptyFile,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::BatchQuotaExceeded { .. } => ErrorCode::BatchQuotaExceeded,
            ApiError::TooManyStreams { .. } => ErrorCode::TooManyStreams,
            ApiError::TooManyArchives { .. } => ErrorCode::TooManyArchives,
            ApiError::TooManySessions { .. } => ErrorCode::TooManySessions,
            ApiError::TooManyUploads { .. } => ErrorCode::TooManyUploads,
            ApiError::ServerBusy { .. } => ErrorCode::ServerBusy,
            ApiError::RangeNotSatisfiable { .. } => ErrorCode::RangeNotSatisfiable,
            ApiError::InvalidKey => ErrorCode::InvalidKey,
            ApiError::UrlSignatureInvalid => ErrorCode::BadSignature,
            ApiError::UrlExpired => ErrorCode::PresignExpired,
            ApiError::Internal(_) => ErrorCode::InternalError,
            ApiError::StateUnavailable(_) => ErrorCode::StateStoreUnavailable,
            ApiError::StateFull(_) => ErrorCode::StateStoreFull,
            ApiError::ObjectStoreUnavailable(_) => ErrorCode::ObjectStoreUnavailable,
            ApiError::QueueUnavailable(_) => ErrorCode::JobQueueUnavailable,
            ApiError::QueueRejected(_) => ErrorCode::JobQueueRejected,
        }
    }

    /// What went wrong inside, for the logs of 5xx answers (never sent to the client).
    fn detail(&self) -> Option<&str> {
        match self {
            ApiError::Internal(d)
            | ApiError::StateUnavailable(d)
            | ApiError::StateFull(d)
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
    /// Too many requests for this session: `rate_limited`, with `Retry-After` in seconds;
    /// on a multipart upload, the session streams its share of this replica's uploads
    /// already (`too_many_uploads`, with `Retry-After`); on an archive, it downloads its
    /// `api.archives_per_session` archives already, or its client address
    /// `api.archives_per_address` across its sessions (`too_many_archives`), or its request
    /// budget cannot pay for a request per file the archive holds (`rate_limited`).
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// A dependency is down or full (`state_store_unavailable`, `state_store_full`, `object_store_unavailable`,
    /// `job_queue_unavailable`, `job_queue_rejected`), or, on a multipart upload, this
    /// replica streams its maximum of uploads already (`server_busy`, with `Retry-After` in
    /// seconds); repeating the request later is safe.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let Some(detail) = self.detail() {
            tracing::error!(
                code = self.code().as_str(),
                status = status.as_u16(),
                detail,
                "request failed"
            );
        }
        let mut response = HttpResponse::build(status);
        if let ApiError::RateLimited { retry_after_secs }
        | ApiError::BatchQuotaExceeded {
            retry_after_secs, ..
        }
        | ApiError::TooManyUploads {
            retry_after_secs, ..
        }
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
        response.json(ErrorBody::new(self.code().as_str(), self.to_string()))
    }
}

impl From<StateError> for ApiError {
    fn from(err: StateError) -> Self {
        match err {
            StateError::Unavailable(d) => ApiError::StateUnavailable(d),
            StateError::Full(d) => ApiError::StateFull(d),
            StateError::NotFound => ApiError::BatchNotFound,
            StateError::BatchClosed => ApiError::BatchClosed,
            StateError::TooManyPhotos { limit } => ApiError::TooManyPhotos { limit },
            StateError::Corrupt(d) => ApiError::Internal(format!("corrupt state: {d}")),
        }
    }
}

impl From<InvalidOptions> for ApiError {
    fn from(err: InvalidOptions) -> Self {
        match err {
            InvalidOptions::Sizes(m) => ApiError::InvalidSizes(m),
            InvalidOptions::Quality(m) => ApiError::InvalidQuality(m),
            InvalidOptions::Format(m) => ApiError::InvalidFormat(m),
            InvalidOptions::Metadata(m) => ApiError::InvalidMetadata(m),
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
