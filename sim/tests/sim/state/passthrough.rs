//! The state store's ports no invariant of the simulation reads: sessions, client limits,
//! pending uploads, progress and storage charges, passed through with their faults.

use std::time::Duration;

use async_trait::async_trait;
use tirage_core::model::Batch;
use tirage_ports::{
    Charge, ClientLimits, Payer, PendingUpload, PendingUploads, Progress, ProgressFeed,
    RateDecision, Session, SessionQuota, SessionRate, Sessions, StateError, Storage, StorageCaps,
    StoredBytes,
};
use uuid::Uuid;

use super::ObservedState;

#[async_trait]
impl Sessions for ObservedState {
    async fn put_session(
        &self,
        session: &Session,
        ttl: Duration,
        quota: Option<SessionQuota<'_>>,
    ) -> Result<bool, StateError> {
        self.io("put_session", self.inner.put_session(session, ttl, quota))
            .await
    }

    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError> {
        self.io("touch_session", self.inner.touch_session(id, ttl))
            .await
    }
}

#[async_trait]
impl ClientLimits for ObservedState {
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError> {
        self.io("rate_limit", self.inner.rate_limit(key, limit, window))
            .await
    }

    async fn open_stream(
        &self,
        session_id: &str,
        stream_id: Uuid,
        limit: u32,
        lease: Duration,
    ) -> Result<bool, StateError> {
        self.io(
            "open_stream",
            self.inner.open_stream(session_id, stream_id, limit, lease),
        )
        .await
    }

    async fn charge_session_requests(
        &self,
        session_id: &str,
        hits: u32,
        rate: SessionRate,
    ) -> Result<RateDecision, StateError> {
        self.io(
            "charge_session_requests",
            self.inner.charge_session_requests(session_id, hits, rate),
        )
        .await
    }

    async fn close_stream(&self, session_id: &str, stream_id: Uuid) -> Result<(), StateError> {
        self.io(
            "close_stream",
            self.inner.close_stream(session_id, stream_id),
        )
        .await
    }
}

#[async_trait]
impl PendingUploads for ObservedState {
    async fn put_pending_uploads(
        &self,
        batch_id: Uuid,
        uploads: &[PendingUpload],
        limit: u64,
    ) -> Result<(), StateError> {
        self.io(
            "put_pending_uploads",
            self.inner.put_pending_uploads(batch_id, uploads, limit),
        )
        .await
    }

    async fn put_pending_upload(
        &self,
        batch_id: Uuid,
        upload: &PendingUpload,
    ) -> Result<(), StateError> {
        self.io(
            "put_pending_upload",
            self.inner.put_pending_upload(batch_id, upload),
        )
        .await
    }

    async fn take_pending_upload(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PendingUpload>, StateError> {
        self.io(
            "take_pending_upload",
            self.inner.take_pending_upload(batch_id, photo_id),
        )
        .await
    }
}

#[async_trait]
impl Progress for ObservedState {
    async fn watch_progress(&self) -> Result<ProgressFeed, StateError> {
        self.io("watch_progress", self.inner.watch_progress()).await
    }
}

#[async_trait]
impl Storage for ObservedState {
    async fn charge_stored(
        &self,
        batch: &Batch,
        payer: Payer<'_>,
        bytes: u64,
        caps: StorageCaps,
    ) -> Result<Charge, StateError> {
        self.io(
            "charge_stored",
            self.inner.charge_stored(batch, payer, bytes, caps),
        )
        .await
    }

    async fn charge_renditions(&self, batch: &Batch, bytes: u64) -> Result<(), StateError> {
        self.io(
            "charge_renditions",
            self.inner.charge_renditions(batch, bytes),
        )
        .await
    }

    async fn refund_stored(&self, batch_id: Uuid, bytes: u64) -> Result<(), StateError> {
        self.io("refund_stored", self.inner.refund_stored(batch_id, bytes))
            .await
    }

    async fn stored_bytes(&self, payer: Payer<'_>) -> Result<StoredBytes, StateError> {
        self.io("stored_bytes", self.inner.stored_bytes(payer))
            .await
    }
}
