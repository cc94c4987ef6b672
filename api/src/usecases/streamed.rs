//! Photos uploaded through the API: each one is streamed to the object store as it
//! arrives, then the whole upload is registered and its jobs published
//! ([`super::intake`]). With an idempotency key a retried upload names the same photos, so
//! the state store registers (and counts) each of them once.

use bytes::Bytes;
use futures::Stream;
use tirage_core::keys;
use tirage_core::model::{Batch, PhotoRecord};
use tirage_ports::Payer;
use uuid::Uuid;

use super::intake::{
    delete_objects, delete_unregistered_originals, ensure_accepting, register_and_publish,
};
use super::quota;
use crate::backpressure::UploadSlot;
use crate::body::{discard, pump};
use crate::error::ApiError;
use crate::state::AppState;

/// One upload's photos, as they arrive.
pub struct StreamedUpload<'a> {
    state: &'a AppState,
    batch: &'a Batch,
    /// Who is charged for the bytes stored ([`quota`]).
    payer: Payer<'a>,
    idempotency_key: Option<String>,
    photos: Vec<PhotoRecord>,
    /// Photos an earlier attempt with the same key registered: their jobs may be queued.
    earlier: Vec<Uuid>,
    /// Photos stored by this attempt (not by an earlier one with the same key).
    fresh: u64,
    /// Bytes stored by this attempt, each charged to `payer` once stored.
    received: u64,
    /// This upload's place among the replica's concurrent uploads, held to the end.
    _slot: UploadSlot,
}

impl<'a> StreamedUpload<'a> {
    /// Starts an upload into `batch`; refused before anything is stored when the batch
    /// takes no more photos, or while the broker is known to be down: the client retries
    /// the same request later, instead of getting photos recorded as failed. Refused first,
    /// with 503 `server_busy`, when this replica streams its maximum of uploads already,
    /// or 429 `too_many_uploads` when the batch's session holds its share of them; with
    /// 409 `storage_quota_exceeded` when `payer` keeps all the bytes it may.
    pub async fn start(
        state: &'a AppState,
        batch: &'a Batch,
        payer: Payer<'a>,
        idempotency_key: Option<String>,
    ) -> Result<Self, ApiError> {
        let slot = state.uploads.try_take(&batch.owner)?;
        ensure_accepting(batch, 1, state.settings.limits.max_photos_per_batch)?;
        quota::ensure_room(state, payer).await?;
        state.ports.queue.ping().await?;
        Ok(StreamedUpload {
            state,
            batch,
            payer,
            idempotency_key,
            photos: Vec::new(),
            earlier: Vec::new(),
            fresh: 0,
            received: 0,
            _slot: slot,
        })
    }

    /// How many photos the upload holds so far.
    pub fn count(&self) -> usize {
        self.photos.len()
    }

    /// Adds the next photo, storing its bytes. A photo an earlier attempt of this request
    /// registered has its original stored already: it is neither stored nor counted again.
    pub async fn add<S, E>(
        &mut self,
        filename: String,
        content_type: &str,
        bytes: &mut S,
    ) -> Result<(), ApiError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (state, batch) = (self.state, self.batch);
        let photo_id = new_photo_id(batch.id, self.idempotency_key.as_deref(), self.count());
        if self.idempotency_key.is_some()
            && state
                .ports
                .state
                .get_photo(batch.id, photo_id)
                .await?
                .is_some()
        {
            discard(bytes)
                .await
                .map_err(|e| ApiError::MalformedMultipart(e.to_string()))?;
            self.photos.push(PhotoRecord::queued(photo_id, filename));
            self.earlier.push(photo_id);
            return Ok(());
        }
        // Checked before storing: a photo over the limit never reaches the store.
        self.fresh += 1;
        ensure_accepting(
            batch,
            self.fresh,
            state.settings.limits.max_photos_per_batch,
        )?;
        let key = keys::original_key(batch.id, photo_id);
        let limit = state.settings.limits.max_file_bytes;
        let size = pump(bytes, |body| {
            state
                .ports
                .objects
                .put_stream(&key, body, content_type, limit)
        })
        .await?;
        // A part's size is known once it is stored: charged then, and removed again when
        // it would pass the quota.
        if let Err(refused) = quota::charge(state, batch, self.payer, size).await {
            delete_objects(state, &[key]).await;
            return Err(refused);
        }
        self.received += size;
        // Recorded before the emptiness check so a stored empty object is cleaned up.
        self.photos
            .push(PhotoRecord::queued(photo_id, filename.clone()));
        if size == 0 {
            return Err(ApiError::EmptyFile(filename));
        }
        Ok(())
    }

    /// Gives the upload up: deletes the originals it stored that no photo needs, and gives
    /// their bytes back.
    pub async fn abandon(&self) {
        delete_unregistered_originals(self.state, self.batch.id, &self.photos).await;
        quota::refund(self.state, self.batch, self.received).await;
    }

    /// Registers every photo in the batch and publishes their jobs.
    pub async fn finish(self, request_id: &str) -> Result<Vec<PhotoRecord>, ApiError> {
        let state = self.state;
        state.metrics.upload_bytes.inc_by(self.received);
        let earlier = &self.earlier;
        register_and_publish(state, self.batch, &self.photos, earlier, request_id).await?;
        tracing::info!(batch_id = %self.batch.id, photos = self.photos.len(), bytes = self.received, "upload accepted");
        Ok(self.photos)
    }
}

/// The id of the `index`-th photo of an upload. With an idempotency key it is derived from
/// the batch, the key and the index, so a retried request names the same photos; without
/// one it is random.
fn new_photo_id(batch_id: Uuid, idempotency_key: Option<&str>, index: usize) -> Uuid {
    match idempotency_key {
        Some(key) => Uuid::new_v5(&batch_id, format!("{key}#{index}").as_bytes()),
        None => Uuid::new_v4(),
    }
}
