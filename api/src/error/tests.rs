//! The error table against the contract and the README.
use super::*;

#[test]
fn the_readme_lists_every_code_under_its_status() {
    let readme = include_str!("../../../README.md");
    for code in ErrorCode::ALL {
        let status = code.status();
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| {status} |")))
            .unwrap_or_else(|| panic!("README has no row for status {status}"));
        assert!(
            row.contains(&format!("`{code}`")),
            "README's {status} row lacks {code}"
        );
    }
}

fn every_variant() -> Vec<ApiError> {
    vec![
        ApiError::MalformedJson(String::new()),
        ApiError::MalformedQuery(String::new()),
        ApiError::MalformedMultipart(String::new()),
        ApiError::UnknownSize(String::new()),
        ApiError::MissingCredentials,
        ApiError::InvalidSession,
        ApiError::InvalidApiKey,
        ApiError::NotFound,
        ApiError::BatchNotFound,
        ApiError::PhotoNotFound,
        ApiError::RenditionNotFound(String::new()),
        ApiError::UploadNotFound,
        ApiError::ObjectNotFound,
        ApiError::MethodNotAllowed {
            allow: "GET".into(),
        },
        ApiError::BatchClosed,
        ApiError::TooManyPhotos { limit: 1 },
        ApiError::TooManyOpenBatches { limit: 1 },
        ApiError::TooManyUploads {
            limit: 1,
            retry_after_secs: 1,
        },
        ApiError::BatchQuotaExceeded {
            limit: 1,
            retry_after_secs: 1,
        },
        ApiError::UploadMissing(Uuid::nil()),
        ApiError::FileTooLarge { limit: 1 },
        ApiError::BodyTooLarge { limit: 1 },
        ApiError::UnsupportedMediaType { expected: "x" },
        ApiError::InvalidBody(String::new()),
        ApiError::InvalidSizes(String::new()),
        ApiError::InvalidQuality(String::new()),
        ApiError::InvalidFormat(String::new()),
        ApiError::InvalidMetadata(String::new()),
        ApiError::InvalidCallbackUrl(String::new()),
        ApiError::InvalidFiles(String::new()),
        ApiError::InvalidLimit(String::new()),
        ApiError::InvalidCursor,
        ApiError::InvalidIdempotencyKey,
        ApiError::NoFiles,
        ApiError::EmptyFile(String::new()),
        ApiError::InvalidKey,
        ApiError::UrlSignatureInvalid,
        ApiError::UrlExpired,
        ApiError::RangeNotSatisfiable { size: 1 },
        ApiError::RateLimited {
            retry_after_secs: 1,
        },
        ApiError::TooManyStreams {
            scope: "session",
            limit: 1,
        },
        ApiError::TooManyArchives {
            scope: "address",
            limit: 1,
        },
        ApiError::StorageQuotaExceeded {
            payer: "session",
            held: 1,
            cap: 1,
        },
        ApiError::TooManySessions { limit: 1 },
        ApiError::ServerBusy {
            retry_after_secs: 1,
        },
        ApiError::BodyTooSlow {
            need: 1,
            window_secs: 1,
        },
        ApiError::Internal(String::new()),
        ApiError::StateUnavailable(String::new()),
        ApiError::StateFull(String::new()),
        ApiError::ObjectStoreUnavailable(String::new()),
        ApiError::QueueUnavailable(String::new()),
        ApiError::QueueRejected(String::new()),
    ]
}

#[test]
fn every_code_but_readiness_is_some_errors_code() {
    // Every code the API table names is answered by some error, so the table lists nothing
    // that cannot happen; readiness (`/readyz`, the API's and the worker's) answers its own
    // codes outside `ApiError`.
    let readiness = [ErrorCode::DependencyUnavailable, ErrorCode::Draining];
    let answered: Vec<ErrorCode> = every_variant().iter().map(ApiError::code).collect();
    for code in ErrorCode::ALL {
        assert!(
            answered.contains(code) || readiness.contains(code),
            "no ApiError answers {code}"
        );
    }
    for err in every_variant() {
        assert_eq!(err.status_code().as_u16(), err.code().status(), "{err:?}");
    }
}

#[test]
fn statuses_follow_the_contract() {
    assert_eq!(ApiError::InvalidSession.status_code(), 401);
    assert_eq!(ApiError::BatchNotFound.status_code(), 404);
    assert_eq!(ApiError::TooManyPhotos { limit: 1 }.status_code(), 409);
    assert_eq!(ApiError::FileTooLarge { limit: 1 }.status_code(), 413);
    assert_eq!(
        ApiError::UnsupportedMediaType { expected: "x" }.status_code(),
        415
    );
    assert_eq!(ApiError::InvalidSizes(String::new()).status_code(), 422);
    assert_eq!(ApiError::MalformedJson(String::new()).status_code(), 400);
    assert_eq!(
        ApiError::from(StateError::Unavailable("down".into())).status_code(),
        503
    );
    assert_eq!(
        ApiError::from(QueueError::Unavailable("down".into())).code(),
        "job_queue_unavailable"
    );
}

#[test]
fn rate_limited_answers_carry_retry_after() {
    let response = ApiError::RateLimited {
        retry_after_secs: 7,
    }
    .error_response();
    assert_eq!(response.status(), 429);
    assert_eq!(
        response.headers().get(header::RETRY_AFTER),
        Some(&HeaderValue::from_static("7"))
    );
}

#[test]
fn method_not_allowed_answers_carry_allow() {
    let response = ApiError::MethodNotAllowed {
        allow: "GET, DELETE".into(),
    }
    .error_response();
    assert_eq!(response.status(), 405);
    assert_eq!(
        response.headers().get(header::ALLOW),
        Some(&HeaderValue::from_static("GET, DELETE"))
    );
}
