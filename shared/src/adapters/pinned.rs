//! Runs every call of a port on one fixed tokio runtime.
//!
//! Network clients (hyper under aws-sdk-s3, redis' multiplexed connections) spawn each pooled
//! connection's driver task on the runtime that opened it. actix-web gives each of its workers
//! its own runtime and stops them one by one on shutdown, so a connection opened by one worker
//! and later borrowed by another dies with the first worker ("runtime dropped the dispatch
//! task"), failing a request that never reached the store. Pinning the adapter to one runtime
//! that lives as long as the process keeps every connection alive for as long as it is pooled.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::runtime::Handle;
use uuid::Uuid;

use crate::model::{Batch, PhotoOutcome, PhotoRecord};
use crate::ports::object_store::{
    ByteStream, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest,
};
use crate::ports::state_store::{
    CloseResult, PendingUpload, PhotoPage, RateDecision, RecordResult, Session, StateError,
    StateStore,
};

/// A port whose calls all run on `handle`'s runtime.
pub struct Pinned<T: ?Sized> {
    inner: Arc<T>,
    handle: Handle,
}

impl<T: ?Sized> Pinned<T> {
    pub fn new(inner: Arc<T>, handle: Handle) -> Self {
        Pinned { inner, handle }
    }
}

/// Runs `call` on the pinned runtime; a task that died (the runtime is shutting down) is
/// reported as the port's transient error.
macro_rules! on_runtime {
    ($self:ident, $unavailable:path, |$inner:ident| $call:expr) => {{
        let $inner = Arc::clone(&$self.inner);
        match $self.handle.spawn(async move { $call }).await {
            Ok(result) => result,
            Err(e) => Err($unavailable(format!("adapter task failed: {e}"))),
        }
    }};
}

#[async_trait]
impl<T: ObjectStore + ?Sized> ObjectStore for Pinned<T> {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), ObjectStoreError> {
        let (key, content_type) = (key.to_owned(), content_type.to_owned());
        on_runtime!(self, ObjectStoreError::Unavailable, |s| s
            .put(&key, body, &content_type)
            .await)
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<u64, ObjectStoreError> {
        let (key, content_type) = (key.to_owned(), content_type.to_owned());
        on_runtime!(self, ObjectStoreError::Unavailable, |s| s
            .put_stream(&key, body, &content_type, max_bytes)
            .await)
    }

    async fn get(&self, key: &str) -> Result<Bytes, ObjectStoreError> {
        let key = key.to_owned();
        on_runtime!(self, ObjectStoreError::Unavailable, |s| s.get(&key).await)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectStoreError> {
        let key = key.to_owned();
        on_runtime!(self, ObjectStoreError::Unavailable, |s| s.head(&key).await)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, ObjectStoreError> {
        let prefix = prefix.to_owned();
        on_runtime!(self, ObjectStoreError::Unavailable, |s| s
            .delete_prefix(&prefix)
            .await)
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        let (key, content_type) = (key.to_owned(), content_type.to_owned());
        on_runtime!(self, ObjectStoreError::Unavailable, |s| s
            .presign_put(&key, &content_type, ttl)
            .await)
    }

    async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        let key = key.to_owned();
        on_runtime!(self, ObjectStoreError::Unavailable, |s| s
            .presign_get(&key, ttl)
            .await)
    }

    async fn ping(&self) -> Result<(), ObjectStoreError> {
        on_runtime!(self, ObjectStoreError::Unavailable, |s| s.ping().await)
    }
}

#[async_trait]
impl<T: StateStore + ?Sized> StateStore for Pinned<T> {
    async fn ping(&self) -> Result<(), StateError> {
        on_runtime!(self, StateError::Unavailable, |s| s.ping().await)
    }

    async fn put_session(&self, session: &Session, ttl: Duration) -> Result<(), StateError> {
        let session = session.clone();
        on_runtime!(self, StateError::Unavailable, |s| s
            .put_session(&session, ttl)
            .await)
    }

    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError> {
        let id = id.to_owned();
        on_runtime!(self, StateError::Unavailable, |s| s
            .touch_session(&id, ttl)
            .await)
    }

    async fn create_batch(&self, batch: &Batch) -> Result<(), StateError> {
        let batch = batch.clone();
        on_runtime!(self, StateError::Unavailable, |s| s
            .create_batch(&batch)
            .await)
    }

    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError> {
        on_runtime!(self, StateError::Unavailable, |s| s
            .get_batch(batch_id)
            .await)
    }

    async fn add_photos(
        &self,
        batch_id: Uuid,
        photos: &[PhotoRecord],
        limit: u64,
    ) -> Result<Batch, StateError> {
        let photos = photos.to_vec();
        on_runtime!(self, StateError::Unavailable, |s| s
            .add_photos(batch_id, &photos, limit)
            .await)
    }

    async fn close_batch(&self, batch_id: Uuid) -> Result<CloseResult, StateError> {
        on_runtime!(self, StateError::Unavailable, |s| s
            .close_batch(batch_id)
            .await)
    }

    async fn record_outcome(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        outcome: &PhotoOutcome,
    ) -> Result<RecordResult, StateError> {
        let outcome = outcome.clone();
        on_runtime!(self, StateError::Unavailable, |s| s
            .record_outcome(batch_id, photo_id, &outcome)
            .await)
    }

    async fn get_photo(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PhotoRecord>, StateError> {
        on_runtime!(self, StateError::Unavailable, |s| s
            .get_photo(batch_id, photo_id)
            .await)
    }

    async fn list_photos(
        &self,
        batch_id: Uuid,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PhotoPage, StateError> {
        let cursor = cursor.map(str::to_owned);
        on_runtime!(self, StateError::Unavailable, |s| s
            .list_photos(batch_id, cursor.as_deref(), limit)
            .await)
    }

    async fn delete_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        on_runtime!(self, StateError::Unavailable, |s| s
            .delete_batch(batch_id)
            .await)
    }

    async fn put_pending_upload(
        &self,
        batch_id: Uuid,
        upload: &PendingUpload,
    ) -> Result<(), StateError> {
        let upload = upload.clone();
        on_runtime!(self, StateError::Unavailable, |s| s
            .put_pending_upload(batch_id, &upload)
            .await)
    }

    async fn take_pending_upload(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PendingUpload>, StateError> {
        on_runtime!(self, StateError::Unavailable, |s| s
            .take_pending_upload(batch_id, photo_id)
            .await)
    }

    async fn mark_effect_done(&self, batch_id: Uuid, effect: &str) -> Result<bool, StateError> {
        let effect = effect.to_owned();
        on_runtime!(self, StateError::Unavailable, |s| s
            .mark_effect_done(batch_id, &effect)
            .await)
    }

    async fn is_effect_done(&self, batch_id: Uuid, effect: &str) -> Result<bool, StateError> {
        let effect = effect.to_owned();
        on_runtime!(self, StateError::Unavailable, |s| s
            .is_effect_done(batch_id, &effect)
            .await)
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError> {
        let key = key.to_owned();
        on_runtime!(self, StateError::Unavailable, |s| s
            .rate_limit(&key, limit, window)
            .await)
    }
}
