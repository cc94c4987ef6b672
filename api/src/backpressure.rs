//! Bounds the multipart uploads one API process streams at once. Each holds up to one
//! object-store part (8 MiB) in memory plus the socket buffers; without a bound, enough
//! parallel uploads exhaust the replica's memory. Past the bound an upload is refused at
//! once, before any of its body is stored or buffered, with 503 `server_busy` and
//! `Retry-After` (the handler reads and discards the body first, so that the answer reaches
//! the client): the client tries again later, or another replica.
//!
//! One session may hold only a share of the slots (`api.uploads_per_session`): past it,
//! 429 `too_many_uploads` with `Retry-After`, so that one client's slow or many bodies
//! cannot take every slot from the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The upload slots of this process, shared by all its HTTP workers; cheap to clone.
#[derive(Clone)]
pub struct UploadSlots {
    slots: Arc<Semaphore>,
    capacity: usize,
    per_session: usize,
    /// Session → slots it holds now (only sessions holding one).
    held: Arc<Mutex<HashMap<String, usize>>>,
    retry_after_secs: u64,
}

/// One upload's slot, given back when dropped (the upload finished, failed or its client
/// went away).
#[derive(Debug)]
pub struct UploadSlot {
    _permit: OwnedSemaphorePermit,
    session: String,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        if let Some(n) = held.get_mut(&self.session) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.session);
            }
        }
    }
}

fn lock(held: &Mutex<HashMap<String, usize>>) -> MutexGuard<'_, HashMap<String, usize>> {
    // Nothing inside the lock panics, so a poisoned lock still holds consistent counts.
    held.lock().unwrap_or_else(|e| e.into_inner())
}

impl UploadSlots {
    /// `capacity` slots for the process, at most `per_session` of them for one session.
    pub fn new(capacity: usize, per_session: usize, retry_after_secs: u64) -> Self {
        UploadSlots {
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            per_session: per_session.clamp(1, capacity.max(1)),
            held: Arc::default(),
            retry_after_secs,
        }
    }

    /// A free slot now for `session`, or `too_many_uploads` (the session holds its share)
    /// or `server_busy` (the process holds every slot): never waits (a waiting upload would
    /// hold its connection and socket buffers all the same).
    pub fn try_take(&self, session: &str) -> Result<UploadSlot, ApiError> {
        let mut held = lock(&self.held);
        let holding = held.get(session).copied().unwrap_or(0);
        if holding >= self.per_session {
            return Err(ApiError::TooManyUploads {
                limit: self.per_session,
                retry_after_secs: self.retry_after_secs,
            });
        }
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::ServerBusy {
                retry_after_secs: self.retry_after_secs,
            })?;
        held.insert(session.to_owned(), holding + 1);
        Ok(UploadSlot {
            _permit: permit,
            session: session.to_owned(),
            held: self.held.clone(),
        })
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

    /// The status of `refused`'s answer and its `Retry-After`.
    fn answer(refused: &ApiError) -> (u16, Option<String>) {
        let response = refused.error_response();
        let retry_after = response
            .headers()
            .get(actix_web::http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (response.status().as_u16(), retry_after)
    }

    #[test]
    fn past_capacity_uploads_are_refused_with_retry_after_until_a_slot_frees() {
        let slots = UploadSlots::new(2, 2, 3);
        let a = slots.try_take("one").unwrap();
        let _b = slots.clone().try_take("two").unwrap();
        assert_eq!(slots.in_use(), 2);
        let refused = slots.try_take("three").unwrap_err();
        assert_eq!(refused.code(), "server_busy");
        assert_eq!(answer(&refused), (503, Some("3".to_owned())));
        drop(a);
        assert_eq!(slots.in_use(), 1);
        let _c = slots.try_take("three").unwrap();
    }

    #[test]
    fn one_session_holds_only_its_share_and_gets_it_back() {
        let slots = UploadSlots::new(4, 2, 3);
        let a = slots.try_take("greedy").unwrap();
        let _b = slots.try_take("greedy").unwrap();
        let refused = slots.try_take("greedy").unwrap_err();
        assert_eq!(refused.code(), "too_many_uploads");
        assert_eq!(answer(&refused), (429, Some("3".to_owned())));
        // Another session still gets the slots the greedy one may not take.
        let _c = slots.try_take("other").unwrap();
        let _d = slots.try_take("other").unwrap();
        assert_eq!(slots.in_use(), 4);
        drop(a);
        assert_eq!(slots.in_use(), 3);
        let _e = slots.try_take("greedy").unwrap();
    }
}
