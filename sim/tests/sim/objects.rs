//! An object store in memory, for the simulator: every method of the `ObjectStore` port, no
//! threads, no files, no random names (the embedded `FsObjectStore` runs on blocking threads,
//! whose completion lands among the tasks as the OS pleases). Objects are kept in key order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tirage_embedded::Clock;
use tirage_ports::object_store::{next_within_limit, validate_key};
use tirage_ports::{
    ByteStream, ObjectBody, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest,
};

/// Bytes per chunk of a streamed read.
const CHUNK: usize = 64;

struct Object {
    data: Bytes,
    content_type: String,
    /// When it was written, by the run's clock.
    written: chrono::DateTime<chrono::Utc>,
}

pub struct SimObjects {
    objects: Mutex<BTreeMap<String, Object>>,
    clock: Arc<dyn Clock>,
}

impl SimObjects {
    pub fn new(clock: Arc<dyn Clock>) -> SimObjects {
        SimObjects {
            objects: Mutex::new(BTreeMap::new()),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Object>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bytes at `key`, read past any fault (the checker's view).
    pub fn peek(&self, key: &str) -> Option<Bytes> {
        self.lock().get(key).map(|o| o.data.clone())
    }

    /// Every key under `prefix`, in order.
    pub fn keys_under(&self, prefix: &str) -> Vec<String> {
        self.lock()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every key under `prefix` with when it was written (virtual time since the run's
    /// start), in key order.
    pub fn written_under(&self, prefix: &str) -> Vec<(String, Duration)> {
        self.lock()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, o)| (k.clone(), crate::clock::since_start(o.written)))
            .collect()
    }

    fn store(&self, key: &str, data: Bytes, content_type: &str) {
        let written = self.clock.now();
        self.lock().insert(
            key.to_owned(),
            Object {
                data,
                content_type: content_type.to_owned(),
                written,
            },
        );
    }

    fn read(&self, key: &str) -> Result<Bytes, ObjectStoreError> {
        validate_key(key)?;
        self.peek(key)
            .ok_or_else(|| ObjectStoreError::NotFound(key.to_owned()))
    }

    fn presign(&self, method: &str, key: &str, query: String, ttl: Duration) -> PresignedRequest {
        PresignedRequest {
            method: method.to_owned(),
            url: format!("sim://{key}?{query}"),
            headers: Vec::new(),
            expires_at: self.clock.now()
                + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        }
    }
}

fn chunked(data: Bytes) -> ByteStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..data.len())
        .step_by(CHUNK)
        .map(|at| Ok(data.slice(at..(at + CHUNK).min(data.len()))))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

#[async_trait]
impl ObjectStore for SimObjects {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), ObjectStoreError> {
        validate_key(key)?;
        self.store(key, body, content_type);
        Ok(())
    }

    async fn put_stream(
        &self,
        key: &str,
        mut body: ByteStream,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<u64, ObjectStoreError> {
        validate_key(key)?;
        let mut size = 0u64;
        let mut data = BytesMut::new();
        while let Some(chunk) = next_within_limit(&mut body, &mut size, max_bytes).await? {
            data.extend_from_slice(&chunk);
        }
        self.store(key, data.freeze(), content_type);
        Ok(size)
    }

    async fn get(&self, key: &str) -> Result<Bytes, ObjectStoreError> {
        self.read(key)
    }

    async fn get_stream(&self, key: &str) -> Result<ObjectBody, ObjectStoreError> {
        let data = self.read(key)?;
        Ok(ObjectBody {
            size: data.len() as u64,
            stream: chunked(data),
        })
    }

    async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<ObjectBody, ObjectStoreError> {
        let data = self.read(key)?;
        let len = data.len() as u64;
        let (start, end) = (range.start.min(len), range.end.min(len));
        let (start, end) = (
            usize::try_from(start).unwrap_or(usize::MAX),
            usize::try_from(end.max(start)).unwrap_or(usize::MAX),
        );
        let part = data.slice(start..end);
        Ok(ObjectBody {
            size: part.len() as u64,
            stream: chunked(part),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectStoreError> {
        validate_key(key)?;
        Ok(self.lock().get(key).map(|o| ObjectMeta {
            size: o.data.len() as u64,
            content_type: Some(o.content_type.clone()),
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError> {
        validate_key(key)?;
        self.lock().remove(key);
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, ObjectStoreError> {
        let keys = self.keys_under(prefix);
        let mut objects = self.lock();
        for key in &keys {
            objects.remove(key);
        }
        Ok(keys.len() as u64)
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        validate_key(key)?;
        let mut request = self.presign("PUT", key, format!("length={content_length}"), ttl);
        request.headers = vec![
            ("content-type".to_owned(), content_type.to_owned()),
            ("content-length".to_owned(), content_length.to_string()),
        ];
        Ok(request)
    }

    async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        validate_key(key)?;
        Ok(self.presign("GET", key, String::new(), ttl))
    }

    async fn ping(&self) -> Result<(), ObjectStoreError> {
        Ok(())
    }
}
