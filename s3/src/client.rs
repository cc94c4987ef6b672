//! The S3 client as Tirage configures it, and how its errors map onto the port's.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use secrecy::ExposeSecret;

use super::settings::S3Settings;
use tirage_ports::object_store::ObjectStoreError;

pub(super) fn client(settings: &S3Settings, endpoint: &str) -> Client {
    let credentials = Credentials::new(
        settings.access_key_id.clone(),
        settings.secret_access_key.expose_secret().to_owned(),
        None,
        None,
        "tirage-settings",
    );
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .force_path_style(true)
        // Checksums only where S3 demands them: S3-compatible stores differ in support, and
        // presigned URLs must not carry headers the browser would have to compute.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        // Bounded waits: a dead store must turn into `Unavailable`, not a hung request.
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .build();
    Client::from_conf(config)
}

/// S3's answers that refuse this process rather than the request: keys rotated or revoked,
/// a clock too far off for signatures, a policy change. Every request fails the same way
/// until an operator fixes it, so it is an outage (the worker pauses intake, the API answers
/// 503), never the fault of the photo at hand.
const REFUSES_US: &[&str] = &[
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "RequestTimeTooSkewed",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "AccountProblem",
    "NoSuchBucket",
];

/// Maps an SDK error: no answer, timeouts, 5xx and refusals of our credentials
/// ([`REFUSES_US`]) are transient; 404 is `NotFound`.
pub(super) fn classify<E, R>(key: &str, err: SdkError<E, R>) -> ObjectStoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ObjectStoreError::Unavailable(format!("{key}: {}", DisplayErrorContext(&err)))
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            if matches!(code, "NoSuchKey" | "NotFound" | "NoSuchUpload") {
                ObjectStoreError::NotFound(key.to_owned())
            } else if matches!(
                code,
                "InternalError" | "ServiceUnavailable" | "SlowDown" | "RequestTimeout"
            ) {
                ObjectStoreError::Unavailable(format!("{key}: {}", DisplayErrorContext(&err)))
            } else if REFUSES_US.contains(&code) {
                refused(key, &err)
            } else {
                ObjectStoreError::Unsupported(format!(
                    "S3 refused {key}: {}",
                    DisplayErrorContext(&err)
                ))
            }
        }
        _ => ObjectStoreError::Unsupported(format!("{key}: {}", DisplayErrorContext(&err))),
    }
}

/// Status-based classification where the SDK exposes the raw response.
/// The answer to a read of a bucket configuration (lifecycle, CORS): `None` when S3 answers
/// `absent_code`, that is the bucket has none.
pub(super) fn unless_absent<T, E, R>(
    bucket: &str,
    answer: Result<T, SdkError<E, R>>,
    absent_code: &str,
) -> Result<Option<T>, ObjectStoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match answer {
        Ok(a) => Ok(Some(a)),
        Err(SdkError::ServiceError(se)) if se.err().code() == Some(absent_code) => Ok(None),
        Err(e) => Err(classify(bucket, e)),
    }
}

/// A bucket configuration that could not be built from our own settings.
pub(super) fn unbuildable(
    what: &'static str,
) -> impl Fn(aws_sdk_s3::error::BuildError) -> ObjectStoreError {
    move |e| ObjectStoreError::Unsupported(format!("{what}: {e}"))
}

pub(super) fn classify_http<E>(
    key: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> ObjectStoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(se) = &err {
        let status = se.raw().status().as_u16();
        if status == 404 {
            return ObjectStoreError::NotFound(key.to_owned());
        }
        if status >= 500 {
            return ObjectStoreError::Unavailable(format!("{key}: {}", DisplayErrorContext(&err)));
        }
        // A HEAD's refusal has no body to name its code: the status is all there is.
        if matches!(status, 401 | 403) && se.err().code().is_none() {
            return refused(key, &err);
        }
    }
    classify(key, err)
}

fn refused<E: std::error::Error>(key: &str, err: &E) -> ObjectStoreError {
    ObjectStoreError::Unavailable(format!(
        "S3 refuses this process's requests ({key}): check the access keys and the clock; {}",
        DisplayErrorContext(err)
    ))
}
