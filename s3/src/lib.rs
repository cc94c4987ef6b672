//! The production [`ObjectStore`] on S3 (Garage in development): path-style addressing on a
//! custom endpoint, static credentials from settings, a key prefix inside the bucket.
//! Uploads stream: one PUT while the body fits in a part, a multipart upload beyond, so no
//! more than one part is ever held in memory; a failed or oversized upload is aborted and
//! leaves nothing behind.

mod client;
mod cors;
mod lifecycle;
mod settings;
mod upload;

pub use lifecycle::RULE_ID as LIFECYCLE_RULE_ID;
pub use settings::S3Settings;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;
use chrono::Utc;

use self::client::{classify, classify_http, client};

use tirage_ports::object_store::validate_key;
use tirage_ports::object_store::{
    ByteStream, ObjectBody, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest,
};

/// Bodies up to this size go in one PUT; larger ones are uploaded in parts of this size
/// (S3 requires at least 5 MiB per part but the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// S3 deletes at most this many keys per request.
const DELETE_BATCH: usize = 1000;

pub struct S3ObjectStore {
    client: Client,
    /// Signs URLs for the public endpoint; presigning makes no network call.
    presigner: Client,
    bucket: String,
    prefix: String,
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

    /// Multipart uploads begun and neither completed nor aborted under `prefix`: the leak
    /// check of the tests (the `testing` feature), which need the adapter's own client.
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

    /// A GET of the whole object, or of `range` (an HTTP `Range`, end inclusive there), as
    /// a stream with its length up front.
    async fn read(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<ObjectBody, ObjectStoreError> {
        let key = self.full(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .set_range(range.map(|r| format!("bytes={}-{}", r.start, r.end.saturating_sub(1))))
            .send()
            .await
            .map_err(|e| classify_http(&key, e))?;
        let size = out
            .content_length()
            .and_then(|len| u64::try_from(len).ok())
            .ok_or_else(|| {
                ObjectStoreError::Unavailable(format!("{key}: GET answered without a length"))
            })?;
        let stream = futures::stream::unfold(out.body, |mut body| async move {
            let chunk = body.next().await?;
            Some((chunk.map_err(std::io::Error::other), body))
        });
        Ok(ObjectBody {
            size,
            stream: Box::pin(stream),
        })
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
        let mut body = self.read(key, None).await?;
        let mut whole = bytes::BytesMut::with_capacity(usize::try_from(body.size).unwrap_or(0));
        while let Some(chunk) = futures::StreamExt::next(&mut body.stream).await {
            let chunk = chunk.map_err(|e| ObjectStoreError::Unavailable(format!("{key}: {e}")))?;
            whole.extend_from_slice(&chunk);
        }
        Ok(whole.freeze())
    }

    async fn get_stream(&self, key: &str) -> Result<ObjectBody, ObjectStoreError> {
        self.read(key, None).await
    }

    async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<ObjectBody, ObjectStoreError> {
        self.read(key, Some(range)).await
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

    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError> {
        let key = self.full(key)?;
        // S3 answers a delete of a missing key with success too.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| classify_http(&key, e))?;
        Ok(())
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
        content_length: u64,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        let key = self.full(key)?;
        let config = presigning(ttl)?;
        let length = i64::try_from(content_length).map_err(|_| {
            ObjectStoreError::Unsupported(format!("{key}: length {content_length} out of range"))
        })?;
        // Content-Length is a signed header (X-Amz-SignedHeaders): a PUT of any other
        // length fails the signature check, so the ticket cannot store more than announced.
        let request = self
            .presigner
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(content_type)
            .content_length(length)
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
        let config = presigning(ttl)?;
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

fn presigning(ttl: Duration) -> Result<PresigningConfig, ObjectStoreError> {
    PresigningConfig::expires_in(ttl).map_err(|e| ObjectStoreError::Unsupported(e.to_string()))
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
