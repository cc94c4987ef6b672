//! Batches and their photos as requests see them: created, filled, closed, listed,
//! deleted. Every [`StateStore`] provides them.
//!
//! [`StateStore`]: crate::StateStore

use async_trait::async_trait;
use tirage_core::model::{Batch, PhotoRecord};
use uuid::Uuid;

use crate::cap::Cap;
use crate::state_error::StateError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoPage {
    pub photos: Vec<PhotoRecord>,
    /// Opaque; pass it back to get the next page. `None` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseResult {
    pub batch: Batch,
    /// True when closing found every photo finished, so the close itself completed the batch.
    pub completed_now: bool,
}

#[async_trait]
pub trait Batches: Send + Sync + 'static {
    /// Stores a new batch, unless its owner already holds `max_open` batches that are open
    /// (neither closed, deleted nor expired): then `false`, and nothing is stored. Counting
    /// and storing are one atomic step. The batch and everything under it expire at
    /// `batch.expires_at`.
    async fn create_batch(&self, batch: &Batch, max_open: Cap) -> Result<bool, StateError>;
    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError>;
    /// Registers queued photos, all or none: [`StateError::BatchClosed`] when the batch is
    /// not open, [`StateError::TooManyPhotos`] when `total` plus the batch's live pending
    /// uploads (other than these photos') would pass `limit`.
    async fn add_photos(
        &self,
        batch_id: Uuid,
        photos: &[PhotoRecord],
        limit: u64,
    ) -> Result<Batch, StateError>;
    /// Stops the batch accepting photos. Idempotent.
    async fn close_batch(&self, batch_id: Uuid) -> Result<CloseResult, StateError>;
    async fn get_photo(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PhotoRecord>, StateError>;
    /// Photos in the order they were added, at most `limit` (clamped to 1..=1000) from
    /// `cursor`. [`StateError::NotFound`] when the batch does not exist or the cursor does
    /// not parse.
    async fn list_photos(
        &self,
        batch_id: Uuid,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PhotoPage, StateError>;
    /// Removes the batch and everything recorded under it. Idempotent.
    async fn delete_batch(&self, batch_id: Uuid) -> Result<(), StateError>;
}
