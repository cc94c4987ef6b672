//! The state store's ports the API keeps per client (sessions, client limits, pending
//! uploads, progress, storage charges) through [`Durable`]: journaled like every write,
//! though losing them excuses nothing an invariant reads.

use std::time::Duration;

use async_trait::async_trait;
use tirage_core::model::Batch;
use tirage_ports::{
    Charge, ClientLimits, Payer, PendingUpload, PendingUploads, Progress, ProgressFeed,
    RateDecision, Session, SessionQuota, SessionRate, Sessions, StateError, Storage, StorageCaps,
    StoredBytes,
};
use uuid::Uuid;

use super::{Store, nothing};
use crate::durable::Durable;

#[async_trait]
impl Sessions for Durable {
    async fn put_session(
        &self,
        session: &Session,
        ttl: Duration,
        quota: Option<SessionQuota<'_>>,
    ) -> Result<bool, StateError> {
        let session = session.clone();
        let quota = quota.map(|q| (q.owner.to_owned(), q.max));
        let call = move |s: Store| {
            let (session, quota) = (session.clone(), quota.clone());
            async move {
                let quota = quota.as_ref().map(|(owner, max)| SessionQuota {
                    owner: owner.as_str(),
                    max: *max,
                });
                s.put_session(&session, ttl, quota).await
            }
        };
        self.write(call, nothing).await
    }

    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError> {
        let id = id.to_owned();
        let call = move |s: Store| {
            let id = id.clone();
            async move { s.touch_session(&id, ttl).await }
        };
        self.write(call, nothing).await
    }
}

#[async_trait]
impl ClientLimits for Durable {
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError> {
        let key = key.to_owned();
        let call = move |s: Store| {
            let key = key.clone();
            async move { s.rate_limit(&key, limit, window).await }
        };
        self.write(call, nothing).await
    }

    async fn charge_session_requests(
        &self,
        session_id: &str,
        hits: u32,
        rate: SessionRate,
    ) -> Result<RateDecision, StateError> {
        let session_id = session_id.to_owned();
        let call = move |s: Store| {
            let session_id = session_id.clone();
            async move { s.charge_session_requests(&session_id, hits, rate).await }
        };
        self.write(call, nothing).await
    }

    async fn open_stream(
        &self,
        session_id: &str,
        stream_id: Uuid,
        limit: u32,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let session_id = session_id.to_owned();
        let call = move |s: Store| {
            let session_id = session_id.clone();
            async move { s.open_stream(&session_id, stream_id, limit, lease).await }
        };
        self.write(call, nothing).await
    }

    async fn close_stream(&self, session_id: &str, stream_id: Uuid) -> Result<(), StateError> {
        let session_id = session_id.to_owned();
        let call = move |s: Store| {
            let session_id = session_id.clone();
            async move { s.close_stream(&session_id, stream_id).await }
        };
        self.write(call, nothing).await
    }
}

#[async_trait]
impl PendingUploads for Durable {
    async fn put_pending_uploads(
        &self,
        batch_id: Uuid,
        uploads: &[PendingUpload],
        limit: u64,
    ) -> Result<(), StateError> {
        let uploads = uploads.to_vec();
        let call = move |s: Store| {
            let uploads = uploads.clone();
            async move { s.put_pending_uploads(batch_id, &uploads, limit).await }
        };
        self.write(call, nothing).await
    }

    async fn put_pending_upload(
        &self,
        batch_id: Uuid,
        upload: &PendingUpload,
    ) -> Result<(), StateError> {
        let upload = upload.clone();
        let call = move |s: Store| {
            let upload = upload.clone();
            async move { s.put_pending_upload(batch_id, &upload).await }
        };
        self.write(call, nothing).await
    }

    async fn take_pending_upload(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PendingUpload>, StateError> {
        let call = move |s: Store| async move { s.take_pending_upload(batch_id, photo_id).await };
        self.write(call, nothing).await
    }
}

#[async_trait]
impl Progress for Durable {
    async fn watch_progress(&self) -> Result<ProgressFeed, StateError> {
        self.read(|s| async move { s.watch_progress().await }).await
    }
}

#[async_trait]
impl Storage for Durable {
    async fn charge_stored(
        &self,
        batch: &Batch,
        payer: Payer<'_>,
        bytes: u64,
        caps: StorageCaps,
    ) -> Result<Charge, StateError> {
        let batch = batch.clone();
        let (session_id, address) = (payer.session_id.to_owned(), payer.address.to_owned());
        let call = move |s: Store| {
            let (batch, session_id, address) = (batch.clone(), session_id.clone(), address.clone());
            async move {
                let payer = Payer {
                    session_id: &session_id,
                    address: &address,
                };
                s.charge_stored(&batch, payer, bytes, caps).await
            }
        };
        self.write(call, nothing).await
    }

    async fn charge_renditions(&self, batch: &Batch, bytes: u64) -> Result<(), StateError> {
        let batch = batch.clone();
        let call = move |s: Store| {
            let batch = batch.clone();
            async move { s.charge_renditions(&batch, bytes).await }
        };
        self.write(call, nothing).await
    }

    async fn refund_stored(&self, batch_id: Uuid, bytes: u64) -> Result<(), StateError> {
        let call = move |s: Store| async move { s.refund_stored(batch_id, bytes).await };
        self.write(call, nothing).await
    }

    async fn stored_bytes(&self, payer: Payer<'_>) -> Result<StoredBytes, StateError> {
        self.read(|s| async move { s.stored_bytes(payer).await })
            .await
    }
}
