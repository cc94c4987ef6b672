//! Announcements of progress, for the API's event streams. Every [`StateStore`] provides
//! them.
//!
//! [`StateStore`]: crate::StateStore

use async_trait::async_trait;
use uuid::Uuid;

use crate::state_error::StateError;

/// See [`Progress::watch_progress`]: ids of batches that changed.
pub type ProgressFeed = std::pin::Pin<Box<dyn futures::Stream<Item = Uuid> + Send>>;

#[async_trait]
pub trait Progress: Send + Sync + 'static {
    /// Announcements of progress, from now on: the id of every batch whose counters or
    /// state changed (photos added, an outcome recorded, closed, deleted), as each change
    /// is stored. Every adapter announces its own writes, so callers of the writing methods
    /// do nothing. One feed per process is enough (the API fans it out to its event
    /// streams). The feed ends when the subscription is lost (a connection dropped, a
    /// reader fell behind): announcements may have been missed, so the caller re-reads what
    /// it watches and subscribes again.
    async fn watch_progress(&self) -> Result<ProgressFeed, StateError>;
}
