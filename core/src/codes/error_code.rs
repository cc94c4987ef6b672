//! Every error code the HTTP API answers with, and its status: one table, from which the
//! API builds its answers, the OpenAPI document lists the codes and clients recognise them.

/// Writes [`ErrorCode`] from one table of `Variant = "name", status;` rows.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal, $status:literal;)+) => {
        /// An error code of the HTTP API (`{"error":{"code":…}}`). Clients match on the
        /// name, never on the message, so names are never changed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in the table's order (by status).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The stable name on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }

            /// The HTTP status the API answers this code with.
            pub const fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)+
                }
            }
        }
    };
}

error_codes! {
    MalformedJson = "malformed_json", 400;
    MalformedQuery = "malformed_query", 400;
    MalformedMultipart = "malformed_multipart", 400;
    MissingCredentials = "missing_credentials", 401;
    InvalidSession = "invalid_session", 401;
    InvalidApiKey = "invalid_api_key", 401;
    /// An object key a presigned URL may not name.
    InvalidKey = "invalid_key", 403;
    PresignExpired = "presign_expired", 403;
    BadSignature = "bad_signature", 403;
    NotFound = "not_found", 404;
    BatchNotFound = "batch_not_found", 404;
    PhotoNotFound = "photo_not_found", 404;
    RenditionNotFound = "rendition_not_found", 404;
    UploadNotFound = "upload_not_found", 404;
    ObjectNotFound = "object_not_found", 404;
    /// A size the batch did not ask for, named in a query.
    UnknownSize = "unknown_size", 404;
    MethodNotAllowed = "method_not_allowed", 405;
    /// An upload body slower than `[api] upload_min_bytes_per_sec` over a window.
    BodyTooSlow = "body_too_slow", 408;
    BatchClosed = "batch_closed", 409;
    TooManyPhotos = "too_many_photos", 409;
    TooManyOpenBatches = "too_many_open_batches", 409;
    UploadMissing = "upload_missing", 409;
    /// A session or a client address keeps as many bytes as it may
    /// (`limits.stored_bytes_per_session`, `limits.stored_bytes_per_address`).
    StorageQuotaExceeded = "storage_quota_exceeded", 409;
    FileTooLarge = "file_too_large", 413;
    BodyTooLarge = "body_too_large", 413;
    UnsupportedMediaType = "unsupported_media_type", 415;
    RangeNotSatisfiable = "range_not_satisfiable", 416;
    InvalidBody = "invalid_body", 422;
    InvalidSizes = "invalid_sizes", 422;
    InvalidQuality = "invalid_quality", 422;
    InvalidFormat = "invalid_format", 422;
    InvalidMetadata = "invalid_metadata", 422;
    InvalidCallbackUrl = "invalid_callback_url", 422;
    InvalidFiles = "invalid_files", 422;
    InvalidLimit = "invalid_limit", 422;
    InvalidCursor = "invalid_cursor", 422;
    InvalidIdempotencyKey = "invalid_idempotency_key", 422;
    NoFiles = "no_files", 422;
    EmptyFile = "empty_file", 422;
    RateLimited = "rate_limited", 429;
    /// A session created as many batches within the hour as it may (closed ones count).
    BatchQuotaExceeded = "batch_quota_exceeded", 429;
    TooManyStreams = "too_many_streams", 429;
    /// A session downloads as many batch archives at once as it may.
    TooManyArchives = "too_many_archives", 429;
    /// A session streams as many multipart uploads through one replica as it may.
    TooManyUploads = "too_many_uploads", 429;
    TooManySessions = "too_many_sessions", 429;
    InternalError = "internal_error", 500;
    StateStoreUnavailable = "state_store_unavailable", 503;
    /// The state store refuses writes: full (Redis at its `maxmemory`).
    StateStoreFull = "state_store_full", 503;
    ObjectStoreUnavailable = "object_store_unavailable", 503;
    JobQueueUnavailable = "job_queue_unavailable", 503;
    JobQueueRejected = "job_queue_rejected", 503;
    /// Answered by the readiness probe, not by `/v1`.
    DependencyUnavailable = "dependency_unavailable", 503;
    ServerBusy = "server_busy", 503;
    /// Answered by a worker's readiness probe while it drains (`tirage-worker admin drain`)
    /// or stops: it takes no new job.
    Draining = "draining", 503;
}

impl ErrorCode {
    /// The code named `name`; `None` for a name this build does not know (a newer server).
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == name)
    }

    /// A 5xx code: the request may succeed when repeated later.
    pub const fn is_server_side(self) -> bool {
        self.status() >= 500
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets a test or a client compare a code with the name it expects.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_found_again() {
        let mut names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        for name in &names {
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert_eq!(
                ErrorCode::from_name(name).map(ErrorCode::as_str),
                Some(*name)
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert_eq!(ErrorCode::from_name("no_such_code"), None);
    }

    #[test]
    fn statuses_are_client_or_server_errors_in_table_order() {
        let statuses: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.status()).collect();
        assert!(statuses.iter().all(|s| (400..600).contains(s)));
        assert!(statuses.is_sorted(), "the table reads by status");
        assert!(ErrorCode::ServerBusy.is_server_side());
        assert!(!ErrorCode::RateLimited.is_server_side());
    }
}
