//! Presigned uploads handed out and not yet completed. Every [`StateStore`] provides them.
//!
//! [`StateStore`]: crate::StateStore

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::state_error::StateError;

/// A presigned upload handed out and not yet completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpload {
    pub photo_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait PendingUploads: Send + Sync + 'static {
    /// Remembers presigned uploads until they are completed or expire, all or none:
    /// [`StateError::BatchClosed`] when the batch is not open, [`StateError::TooManyPhotos`]
    /// when its photos plus its live (unexpired) pending uploads plus these would pass
    /// `limit`, [`StateError::NotFound`] when it does not exist.
    async fn put_pending_uploads(
        &self,
        batch_id: Uuid,
        uploads: &[PendingUpload],
        limit: u64,
    ) -> Result<(), StateError>;
    /// Remembers a presigned upload until it is completed or expires, counted against no
    /// limit (a ticket handed back after a failed `complete`).
    async fn put_pending_upload(
        &self,
        batch_id: Uuid,
        upload: &PendingUpload,
    ) -> Result<(), StateError>;
    /// Removes and returns a pending upload; `None` when unknown (or already taken).
    async fn take_pending_upload(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PendingUpload>, StateError>;
}
