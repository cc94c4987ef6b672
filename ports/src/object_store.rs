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

/// The bytes `range` of a stream that starts at offset 0. A stream that ends before the
/// range does is an error, never a short body.
pub fn slice(stream: ByteStream, range: std::ops::Range<u64>) -> ObjectBody {
    let size = range.end.saturating_sub(range.start);
    let sliced = futures::stream::unfold(
        (stream, 0u64, false),
        move |(mut stream, mut offset, done)| {
            let range = range.clone();
            async move {
                if done || offset >= range.end {
                    return None;
                }
                loop {
                    let Some(chunk) = stream.next().await else {
                        let short = std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("the object ended at byte {offset}, before {}", range.end),
                        );
                        return Some((Err(short), (stream, offset, true)));
                    };
                    let chunk = match chunk {
                        Ok(chunk) => chunk,
                        Err(e) => return Some((Err(e), (stream, offset, true))),
                    };
                    let start = offset;
                    offset += chunk.len() as u64;
                    if offset <= range.start {
                        continue;
                    }
                    let from = usize::try_from(range.start.saturating_sub(start)).unwrap_or(0);
                    let to = usize::try_from(range.end.min(offset) - start).unwrap_or(chunk.len());
                    return Some((Ok(chunk.slice(from..to)), (stream, offset, false)));
                }
            }
        },
    );
    ObjectBody {
        size,
        stream: Box::pin(sliced),
    }
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

    /// The bytes `range` (start inclusive, end exclusive; the caller keeps it within the
    /// object and not empty) of the object at `key`, as a stream with the range's length up
    /// front; [`ObjectStoreError::NotFound`] when there is none. Both of Tirage's adapters
    /// read only the range; this default reads the object from its start through
    /// [`ObjectStore::get_stream`] and keeps the range.
    async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<ObjectBody, ObjectStoreError> {
        let whole = self.get_stream(key).await?;
        Ok(slice(whole.stream, range))
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

/// A character an object key may hold.
pub fn key_char_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')
}

/// A key is relative, made of `[A-Za-z0-9._/-]`, with no empty, `.` or `..` segment.
pub fn validate_key(key: &str) -> Result<(), ObjectStoreError> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key.chars().all(key_char_allowed)
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(ObjectStoreError::Unsupported(format!(
            "invalid object key {key:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn chunks(data: &[u8], size: usize) -> ByteStream {
        let chunks: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures::stream::iter(chunks))
    }

    async fn collect(body: ObjectBody) -> Result<Vec<u8>, std::io::Error> {
        let mut out = Vec::new();
        let mut stream = body.stream;
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_slice_is_exactly_its_range_across_chunk_boundaries() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for range in [
            0..1,
            0..1000,
            7..8,
            7..77,
            99..100,
            100..101,
            95..905,
            999..1000,
        ] {
            let body = slice(chunks(&data, 100), range.clone());
            assert_eq!(body.size, range.end - range.start);
            let got = collect(body).await.unwrap();
            assert_eq!(
                got,
                &data[range.start as usize..range.end as usize],
                "{range:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_stream_shorter_than_the_range_is_an_error() {
        let data = vec![1u8; 50];
        let err = collect(slice(chunks(&data, 20), 10..60)).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
