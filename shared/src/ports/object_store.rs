//! Where originals and renditions live (S3 in production, a directory when embedded).

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};

/// A request body arriving in chunks (an HTTP upload part), never buffered whole.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// The next chunk of `body`, with `size` counting what was read so far: the one way every
/// adapter reads an upload, refusing it as soon as it grows past `max_bytes`.
pub async fn next_within_limit(
    body: &mut ByteStream,
    size: &mut u64,
    max_bytes: u64,
) -> Result<Option<Bytes>, ObjectStoreError> {
    let Some(chunk) = body.next().await else {
        return Ok(None);
    };
    let chunk = chunk.map_err(|e| ObjectStoreError::Body(e.to_string()))?;
    *size += chunk.len() as u64;
    if *size > max_bytes {
        return Err(ObjectStoreError::TooLarge { limit: max_bytes });
    }
    Ok(Some(chunk))
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreError {
    #[error("object {0} not found")]
    NotFound(String),
    /// The body grew past the caller's limit; nothing was stored.
    #[error("object exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The body stream itself failed (the client went away); nothing was stored.
    #[error("upload body failed: {0}")]
    Body(String),
    /// The store did not answer or answered with a server error: worth retrying later.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Unsupported(String),
}

impl ObjectStoreError {
    /// Whether the same call may succeed later without any change on the caller's side.
    pub fn is_transient(&self) -> bool {
        matches!(self, ObjectStoreError::Unavailable(_))
    }
}

/// An object being read: its size, known before the first byte arrives, and its bytes as
/// the store sends them, never held whole in memory.
pub struct ObjectBody {
    pub size: u64,
    /// Yields exactly `size` bytes, or fails; a failure mid-way (the store went away) is an
    /// `Err` item, never a short read that ends cleanly.
    pub stream: ByteStream,
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBody")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub content_type: Option<String>,
}

/// A request a client may make itself, straight to the store, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PresignedRequest {
    pub method: String,
    pub url: String,
    /// Headers the client must send with the request, exactly as given.
    pub headers: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Stores `body` at `key`, replacing any object there (so rewrites are idempotent).
    async fn put(&self, key: &str, body: Bytes, content_type: &str)
    -> Result<(), ObjectStoreError>;

    /// Streams `body` to `key` without holding it whole in memory and returns its size.
    /// Fails with [`ObjectStoreError::TooLarge`] as soon as more than `max_bytes` arrive, and
    /// then leaves no object behind.
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<u64, ObjectStoreError>;

    async fn get(&self, key: &str) -> Result<Bytes, ObjectStoreError>;

    /// Reads the object at `key` as a stream, with its size up front;
    /// [`ObjectStoreError::NotFound`] when there is none. Both of Tirage's adapters stream;
    /// this default reads the object whole through [`ObjectStore::get`], so a wrapper that
    /// only decorates `get` (a test double injecting failures) behaves the same on both.
    async fn get_stream(&self, key: &str) -> Result<ObjectBody, ObjectStoreError> {
        let bytes = self.get(key).await?;
        Ok(ObjectBody {
            size: bytes.len() as u64,
            stream: Box::pin(futures::stream::once(async move { Ok(bytes) })),
        })
    }

    /// `None` when there is no object at `key`.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectStoreError>;

    /// Deletes the object at `key`, if there is one; deleting a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError>;

    /// Deletes every object whose key starts with `prefix`; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, ObjectStoreError>;

    /// A URL a client can PUT exactly `content_length` bytes of `content_type` to, valid
    /// for `ttl`. The length is part of the signature: the store refuses a body of any
    /// other length, so a ticket never stores more than it announced.
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError>;

    /// A URL a client can GET the object from, valid for `ttl`.
    async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError>;

    /// Cheap round trip proving the store (and its bucket) answers; used by `/readyz`.
    async fn ping(&self) -> Result<(), ObjectStoreError>;
}
