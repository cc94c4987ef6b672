//! Bounds the multipart uploads one API process streams at once. Each holds up to one
//! object-store part (8 MiB) in memory plus the socket buffers; without a bound, enough
//! parallel uploads exhaust the replica's memory. Past the bound an upload is refused at
//! once, before any of its body is stored or buffered, with 503 `server_busy` and
//! `Retry-After` (the handler reads and discards the body first, so that the answer reaches
//! the client): the client tries again later, or another replica.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The upload slots of this process, shared by all its HTTP workers; cheap to clone.
#[derive(Clone)]
pub struct UploadSlots {
    slots: Arc<Semaphore>,
    capacity: usize,
    retry_after_secs: u64,
}

/// One upload's slot, given back when dropped (the upload finished, failed or its client
/// went away).
#[derive(Debug)]
pub struct UploadSlot {
    _permit: OwnedSemaphorePermit,
}

impl UploadSlots {
    pub fn new(capacity: usize, retry_after_secs: u64) -> Self {
        UploadSlots {
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            retry_after_secs,
        }
    }

    /// A free slot now, or `server_busy`: never waits (a waiting upload would hold its
    /// connection and socket buffers all the same).
    pub fn try_take(&self) -> Result<UploadSlot, ApiError> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(UploadSlot { _permit: permit }),
            Err(_) => Err(ApiError::ServerBusy {
                retry_after_secs: self.retry_after_secs,
            }),
        }
    }

    /// Uploads streaming now.
    pub fn in_use(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;

    use super::*;

    #[test]
    fn past_capacity_uploads_are_refused_with_retry_after_until_a_slot_frees() {
        let slots = UploadSlots::new(2, 3);
        let a = slots.try_take().unwrap();
        let _b = slots.clone().try_take().unwrap();
        assert_eq!(slots.in_use(), 2);
        let refused = slots.try_take().unwrap_err();
        assert_eq!(refused.code(), "server_busy");
        let response = refused.error_response();
        assert_eq!(response.status(), 503);
        assert_eq!(
            response
                .headers()
                .get(actix_web::http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("3")
        );
        drop(a);
        assert_eq!(slots.in_use(), 1);
        let _c = slots.try_take().unwrap();
    }
}
