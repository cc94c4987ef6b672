//! Batches, photos and pending uploads in memory ([`Batches`], [`PendingUploads`]); the
//! counting rules are in `batches.rs` and `caps.rs`, runs and outcomes in `runs.rs`.

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryStateStore;
use tirage_core::model::{Batch, PhotoRecord};
use tirage_ports::records::page_bounds;
use tirage_ports::{
    Batches, Cap, CloseResult, PendingUpload, PendingUploads, PhotoPage, StateError,
};

#[async_trait]
impl Batches for MemoryStateStore {
    async fn create_batch(&self, batch: &Batch, max_open: Cap) -> Result<bool, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        if !inner.may_open_batch(&batch.owner, max_open, now) {
            return Ok(false);
        }
        inner.insert_batch(batch, now);
        Ok(true)
    }

    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError> {
        let now = self.clock.now();
        Ok(self.lock().batch(batch_id, now).map(|e| e.batch.clone()))
    }

    async fn add_photos(
        &self,
        batch_id: Uuid,
        photos: &[PhotoRecord],
        limit: u64,
    ) -> Result<Batch, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        let batch = entry.add(photos, limit, now)?;
        inner.wrote(now);
        self.announce(batch_id);
        Ok(batch)
    }

    async fn close_batch(&self, batch_id: Uuid) -> Result<CloseResult, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        let closed = entry.close();
        self.announce(batch_id);
        Ok(closed)
    }

    async fn get_photo(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PhotoRecord>, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        Ok(inner
            .batch(batch_id, now)
            .and_then(|e| e.photos.get(&photo_id).cloned()))
    }

    async fn list_photos(
        &self,
        batch_id: Uuid,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PhotoPage, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        let (start, end) = page_bounds(cursor, limit)?;
        let end = end.min(entry.order.len());
        let photos = entry
            .order
            .get(start.min(end)..end)
            .unwrap_or_default()
            .iter()
            .filter_map(|id| entry.photos.get(id).cloned())
            .collect();
        Ok(PhotoPage {
            photos,
            next_cursor: (end < entry.order.len()).then(|| end.to_string()),
        })
    }

    async fn delete_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        self.lock().batches.remove(&batch_id);
        self.announce(batch_id);
        Ok(())
    }
}

#[async_trait]
impl PendingUploads for MemoryStateStore {
    async fn put_pending_uploads(
        &self,
        batch_id: Uuid,
        uploads: &[PendingUpload],
        limit: u64,
    ) -> Result<(), StateError> {
        let now = self.clock.now();
        self.lock()
            .put_pending_capped(batch_id, uploads, Some(limit), now)
    }

    async fn put_pending_upload(
        &self,
        batch_id: Uuid,
        upload: &PendingUpload,
    ) -> Result<(), StateError> {
        let now = self.clock.now();
        self.lock()
            .put_pending_capped(batch_id, std::slice::from_ref(upload), None, now)
    }

    async fn take_pending_upload(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PendingUpload>, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        Ok(inner
            .batch(batch_id, now)
            .and_then(|e| e.pending.remove(&photo_id))
            .filter(|u| u.expires_at > now))
    }
}
