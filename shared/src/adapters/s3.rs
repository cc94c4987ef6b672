//! The production [`ObjectStore`] on S3 (Garage in development): path-style addressing on a
//! custom endpoint, static credentials from settings, a key prefix inside the bucket.
//! Uploads stream: one PUT while the body fits in a part, a multipart upload beyond, so no
//! more than one part is ever held in memory; a failed or oversized upload is aborted and
//! leaves nothing behind.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::fs::validate_key;
use crate::ports::object_store::{
    ByteStream, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest,
};

/// Bodies up to this size go in one PUT; larger ones are uploaded in parts of this size
/// (S3 requires at least 5 MiB per part but the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// S3 deletes at most this many keys per request.
const DELETE_BATCH: usize = 1000;

fn default_region() -> String {
    "garage".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
pub struct S3Settings {
    /// Where this process reaches S3, e.g. `http://127.0.0.1:3900`.
    pub endpoint: String,
    /// Where clients reach S3, for presigned URLs; defaults to `endpoint`.
    #[serde(default)]
    pub public_endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// Prepended to every key (tests isolate under `tirage-test/{uuid}/`).
    #[serde(default)]
    pub key_prefix: String,
}

pub struct S3ObjectStore {
    client: Client,
    /// Signs URLs for the public endpoint; presigning makes no network call.
    presigner: Client,
    bucket: String,
    prefix: String,
}

fn client(settings: &S3Settings, endpoint: &str) -> Client {
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

/// Maps an SDK error: no answer, timeouts and 5xx are transient; 404 is `NotFound`.
fn classify<E, R>(key: &str, err: SdkError<E, R>) -> ObjectStoreError
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
fn classify_http<E>(
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
    }
    classify(key, err)
}

struct Multipart {
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl S3ObjectStore {
    /// Builds the clients; no request is made (check with [`ObjectStore::ping`]). Their
    /// connections open on first use, on the runtime that uses them.
    pub fn new(settings: &S3Settings) -> Self {
        let public = settings
            .public_endpoint
            .as_deref()
            .unwrap_or(&settings.endpoint);
        S3ObjectStore {
            client: client(settings, &settings.endpoint),
            presigner: client(settings, public),
            bucket: settings.bucket.clone(),
            prefix: settings.key_prefix.clone(),
        }
    }

    /// Multipart uploads begun and neither completed nor aborted under `prefix` (a leak
    /// check for tests and diagnostics).
    pub async fn incomplete_uploads(&self, prefix: &str) -> Result<usize, ObjectStoreError> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .send()
            .await
            .map_err(|e| classify_http(&full_prefix, e))?;
        Ok(out.uploads().len())
    }

    fn full(&self, key: &str) -> Result<String, ObjectStoreError> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    async fn upload_part(
        &self,
        upload: &mut Multipart,
        body: Bytes,
    ) -> Result<(), ObjectStoreError> {
        let number = i32::try_from(upload.parts.len() + 1)
            .map_err(|_| ObjectStoreError::Unsupported("too many parts".into()))?;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .part_number(number)
            .body(S3Body::from(body))
            .send()
            .await
            .map_err(|e| classify_http(&upload.key, e))?;
        upload.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    async fn abort(&self, upload: &Multipart) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .send()
            .await;
        if let Err(e) = aborted {
            tracing::warn!(key = %upload.key, error = %DisplayErrorContext(&e), "multipart abort failed");
        }
    }

    /// The streaming upload proper; on error the caller aborts `multipart` if one started.
    async fn stream_upload(
        &self,
        key: &str,
        mut body: ByteStream,
        content_type: &str,
        max_bytes: u64,
        multipart: &mut Option<Multipart>,
    ) -> Result<u64, ObjectStoreError> {
        let mut buffer = BytesMut::new();
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ObjectStoreError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > max_bytes {
                return Err(ObjectStoreError::TooLarge { limit: max_bytes });
            }
            buffer.extend_from_slice(&chunk);
            while buffer.len() >= PART_SIZE {
                let part = buffer.split_to(PART_SIZE).freeze();
                if multipart.is_none() {
                    let created = self
                        .client
                        .create_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key)
                        .content_type(content_type)
                        .send()
                        .await
                        .map_err(|e| classify_http(key, e))?;
                    let upload_id = created.upload_id().ok_or_else(|| {
                        ObjectStoreError::Unavailable("S3 returned no upload id".into())
                    })?;
                    *multipart = Some(Multipart {
                        key: key.to_owned(),
                        upload_id: upload_id.to_owned(),
                        parts: Vec::new(),
                    });
                }
                if let Some(upload) = multipart.as_mut() {
                    self.upload_part(upload, part).await?;
                }
            }
        }
        match multipart.as_mut() {
            None => {
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type(content_type)
                    .body(S3Body::from(buffer.freeze()))
                    .send()
                    .await
                    .map_err(|e| classify_http(key, e))?;
            }
            Some(upload) => {
                if !buffer.is_empty() {
                    self.upload_part(upload, buffer.freeze()).await?;
                }
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload.upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(upload.parts.clone()))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| classify_http(key, e))?;
                // Completed: nothing left to abort.
                *multipart = None;
            }
        }
        Ok(size)
    }

    async fn delete_keys(&self, keys: Vec<ObjectIdentifier>) -> Result<(), ObjectStoreError> {
        let delete = Delete::builder()
            .set_objects(Some(keys))
            .quiet(true)
            .build()
            .map_err(|e| ObjectStoreError::Unsupported(e.to_string()))?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| classify_http("delete", e))?;
        if let Some(failed) = out.errors().first() {
            return Err(ObjectStoreError::Unavailable(format!(
                "delete of {} failed: {}",
                failed.key().unwrap_or_default(),
                failed.message().unwrap_or_default()
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), ObjectStoreError> {
        let key = self.full(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(content_type)
            .body(S3Body::from(body))
            .send()
            .await
            .map_err(|e| classify_http(&key, e))?;
        Ok(())
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<u64, ObjectStoreError> {
        let key = self.full(key)?;
        let mut multipart = None;
        let result = self
            .stream_upload(&key, body, content_type, max_bytes, &mut multipart)
            .await;
        if let Some(upload) = &multipart {
            // Failed after the multipart upload began: drop its parts.
            self.abort(upload).await;
        }
        result
    }

    async fn get(&self, key: &str) -> Result<Bytes, ObjectStoreError> {
        let key = self.full(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| classify_http(&key, e))?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| ObjectStoreError::Unavailable(format!("{key}: {e}")))?;
        Ok(body.into_bytes())
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectStoreError> {
        let key = self.full(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| classify_http(&key, e))
        {
            Ok(out) => Ok(Some(ObjectMeta {
                size: u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0),
                content_type: out.content_type().map(str::to_owned),
            })),
            Err(ObjectStoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, ObjectStoreError> {
        if prefix.is_empty() {
            return Err(ObjectStoreError::Unsupported(
                "refusing to delete an empty prefix".into(),
            ));
        }
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut deleted = 0u64;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| classify_http(&full_prefix, e))?;
            let keys: Vec<ObjectIdentifier> = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                .collect();
            for chunk in keys.chunks(DELETE_BATCH) {
                self.delete_keys(chunk.to_vec()).await?;
                deleted += chunk.len() as u64;
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated().unwrap_or(false) => token = Some(next.to_owned()),
                _ => return Ok(deleted),
            }
        }
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        let key = self.full(key)?;
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| ObjectStoreError::Unsupported(e.to_string()))?;
        let request = self
            .presigner
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(content_type)
            .presigned(config)
            .await
            .map_err(|e| classify(&key, e))?;
        Ok(presigned(request, ttl))
    }

    async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        let key = self.full(key)?;
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| ObjectStoreError::Unsupported(e.to_string()))?;
        let request = self
            .presigner
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(config)
            .await
            .map_err(|e| classify(&key, e))?;
        Ok(presigned(request, ttl))
    }

    async fn ping(&self) -> Result<(), ObjectStoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| classify_http(&self.bucket, e))?;
        Ok(())
    }
}

fn presigned(request: aws_sdk_s3::presigning::PresignedRequest, ttl: Duration) -> PresignedRequest {
    PresignedRequest {
        method: request.method().to_owned(),
        url: request.uri().to_owned(),
        headers: request
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        expires_at: Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default(),
    }
}
