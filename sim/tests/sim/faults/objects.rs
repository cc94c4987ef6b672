//! The object store through faults: calls that fail or hang, bodies that break off.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tirage_ports::{
    ByteStream, ObjectBody, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest,
};

use super::Injector;

fn objects_error(message: String) -> ObjectStoreError {
    ObjectStoreError::Unavailable(message)
}

/// The object store through faults.
pub struct FaultyObjects {
    inner: Arc<dyn ObjectStore>,
    faults: Injector,
}

impl FaultyObjects {
    pub fn new(inner: Arc<dyn ObjectStore>, faults: Injector) -> FaultyObjects {
        FaultyObjects { inner, faults }
    }

    /// A body that breaks off after its first chunk, with the chance of the plan.
    fn maybe_break(&self, key: &str, body: ObjectBody) -> ObjectBody {
        if !self.faults.chance(self.faults.plan.body_break) {
            return body;
        }
        self.faults.fault(
            "get_stream",
            "body_break",
            &self.faults.ledger.key_subject(key),
        );
        let broken: ByteStream =
            Box::pin(body.stream.take(1).chain(futures::stream::once(async {
                Err(std::io::Error::other("sim: the body broke off"))
            })));
        ObjectBody {
            size: body.size,
            stream: broken,
        }
    }
}

#[async_trait]
impl ObjectStore for FaultyObjects {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), ObjectStoreError> {
        let subject = self.faults.ledger.key_subject(key);
        let inner = self.inner.put(key, body, content_type);
        self.faults
            .call("put", &subject, inner, objects_error, || {})
            .await
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<u64, ObjectStoreError> {
        let subject = self.faults.ledger.key_subject(key);
        let inner = self.inner.put_stream(key, body, content_type, max_bytes);
        self.faults
            .call("put_stream", &subject, inner, objects_error, || {})
            .await
    }

    async fn get(&self, key: &str) -> Result<Bytes, ObjectStoreError> {
        let subject = self.faults.ledger.key_subject(key);
        self.faults
            .call("get", &subject, self.inner.get(key), objects_error, || {})
            .await
    }

    async fn get_stream(&self, key: &str) -> Result<ObjectBody, ObjectStoreError> {
        let subject = self.faults.ledger.key_subject(key);
        let inner = self.inner.get_stream(key);
        let body = self
            .faults
            .call("get_stream", &subject, inner, objects_error, || {})
            .await?;
        Ok(self.maybe_break(key, body))
    }

    async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<ObjectBody, ObjectStoreError> {
        let subject = self.faults.ledger.key_subject(key);
        let inner = self.inner.get_range(key, range);
        let body = self
            .faults
            .call("get_range", &subject, inner, objects_error, || {})
            .await?;
        Ok(self.maybe_break(key, body))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectStoreError> {
        let subject = self.faults.ledger.key_subject(key);
        self.faults
            .call("head", &subject, self.inner.head(key), objects_error, || {})
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError> {
        let subject = self.faults.ledger.key_subject(key);
        self.faults
            .call(
                "delete",
                &subject,
                self.inner.delete(key),
                objects_error,
                || {},
            )
            .await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, ObjectStoreError> {
        let subject = self.faults.ledger.key_subject(prefix);
        let inner = self.inner.delete_prefix(prefix);
        self.faults
            .call("delete_prefix", &subject, inner, objects_error, || {})
            .await
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        let subject = self.faults.ledger.key_subject(key);
        let inner = self
            .inner
            .presign_put(key, content_type, content_length, ttl);
        self.faults
            .call("presign_put", &subject, inner, objects_error, || {})
            .await
    }

    async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        let subject = self.faults.ledger.key_subject(key);
        let inner = self.inner.presign_get(key, ttl);
        self.faults
            .call("presign_get", &subject, inner, objects_error, || {})
            .await
    }

    async fn ping(&self) -> Result<(), ObjectStoreError> {
        self.faults
            .call("ping", "", self.inner.ping(), objects_error, || {})
            .await
    }
}
