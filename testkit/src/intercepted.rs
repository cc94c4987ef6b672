//! An object store that lets a test step in before each call reaches the real one: stall a
//! call, fail it, count it. Every call goes through to the inner store unchanged unless the
//! test's [`ObjectHooks`] say otherwise; a test writes only the hook it needs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tirage_ports::{
    ByteStream, ObjectBody, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest,
};

/// What runs before a call of the same name; `Err` answers the call without reaching the
/// inner store. Every hook passes by default. [`ObjectHooks::map_body`] sees the body
/// `get_stream` answers, to change how it reads (a failure at its first read, say).
#[async_trait]
pub trait ObjectHooks: Send + Sync {
    async fn before_put(&self, _key: &str) -> Result<(), ObjectStoreError> {
        Ok(())
    }
    async fn before_get(&self, _key: &str) -> Result<(), ObjectStoreError> {
        Ok(())
    }
    async fn before_get_stream(&self, _key: &str) -> Result<(), ObjectStoreError> {
        Ok(())
    }
    fn map_body(&self, body: ObjectBody) -> ObjectBody {
        body
    }
    async fn before_head(&self, _key: &str) -> Result<(), ObjectStoreError> {
        Ok(())
    }
    async fn before_delete_prefix(&self, _prefix: &str) -> Result<(), ObjectStoreError> {
        Ok(())
    }
}

/// Hooks shared with the test that reads what they saw.
#[async_trait]
impl<H: ObjectHooks + ?Sized> ObjectHooks for Arc<H> {
    async fn before_put(&self, key: &str) -> Result<(), ObjectStoreError> {
        (**self).before_put(key).await
    }
    async fn before_get(&self, key: &str) -> Result<(), ObjectStoreError> {
        (**self).before_get(key).await
    }
    async fn before_get_stream(&self, key: &str) -> Result<(), ObjectStoreError> {
        (**self).before_get_stream(key).await
    }
    fn map_body(&self, body: ObjectBody) -> ObjectBody {
        (**self).map_body(body)
    }
    async fn before_head(&self, key: &str) -> Result<(), ObjectStoreError> {
        (**self).before_head(key).await
    }
    async fn before_delete_prefix(&self, prefix: &str) -> Result<(), ObjectStoreError> {
        (**self).before_delete_prefix(prefix).await
    }
}

/// `inner` with `hooks` in front of it.
pub struct Intercepted<H> {
    pub inner: Arc<dyn ObjectStore>,
    pub hooks: H,
}

#[async_trait]
impl<H: ObjectHooks + 'static> ObjectStore for Intercepted<H> {
    async fn put(&self, key: &str, body: Bytes, ct: &str) -> Result<(), ObjectStoreError> {
        self.hooks.before_put(key).await?;
        self.inner.put(key, body, ct).await
    }
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        ct: &str,
        max: u64,
    ) -> Result<u64, ObjectStoreError> {
        self.inner.put_stream(key, body, ct, max).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, ObjectStoreError> {
        self.hooks.before_get(key).await?;
        self.inner.get(key).await
    }
    async fn get_stream(&self, key: &str) -> Result<ObjectBody, ObjectStoreError> {
        self.hooks.before_get_stream(key).await?;
        let body = self.inner.get_stream(key).await?;
        Ok(self.hooks.map_body(body))
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectStoreError> {
        self.hooks.before_head(key).await?;
        self.inner.head(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError> {
        self.inner.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, ObjectStoreError> {
        self.hooks.before_delete_prefix(prefix).await?;
        self.inner.delete_prefix(prefix).await
    }
    async fn presign_put(
        &self,
        key: &str,
        ct: &str,
        length: u64,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        self.inner.presign_put(key, ct, length, ttl).await
    }
    async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        self.inner.presign_get(key, ttl).await
    }
    async fn ping(&self) -> Result<(), ObjectStoreError> {
        self.inner.ping().await
    }
}
