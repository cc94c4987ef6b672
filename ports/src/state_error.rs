//! How a state store call fails, for every trait the state store offers.

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The store did not answer: worth retrying later.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// The batch (or photo) does not exist, or has expired.
    #[error("not found")]
    NotFound,
    /// The batch no longer accepts photos.
    #[error("batch is closed")]
    BatchClosed,
    #[error("batch would exceed its limit of {limit} photos")]
    TooManyPhotos { limit: u64 },
    /// The store refuses writes because it is full (Redis at `maxmemory`, which every
    /// deploy sets with `noeviction`: evicting would silently lose sessions and counters).
    /// Retried like an outage, but named, so operators see why: room comes back as batches
    /// expire, or when the store gets more memory.
    #[error("state store full: {0}")]
    Full(String),
    /// Stored data did not parse: a bug or a foreign writer, never the user's fault.
    #[error("stored state is corrupt: {0}")]
    Corrupt(String),
}

impl StateError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StateError::Unavailable(_) | StateError::Full(_))
    }
}
