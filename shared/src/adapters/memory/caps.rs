//! The caps one client may not pass, by the rules of the Redis scripts: sessions per client
//! address (`create_session.lua`), open batches per session (`create_batch.lua` with the
//! owner's set) and pending uploads against the photo limit (`put_pending.lua`,
//! `add_photos.lua`). Each runs under the store's one lock, so it is atomic.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{BatchEntry, Inner, after};
use crate::model::{Batch, BatchState};
use crate::ports::state_store::{PendingUpload, Session, SessionQuota, StateError};

impl Inner {
    /// Stores `session` unless its creator made `quota.max` sessions within the last `ttl`.
    pub(super) fn put_session_capped(
        &mut self,
        session: &Session,
        ttl: Duration,
        quota: SessionQuota<'_>,
        now: DateTime<Utc>,
    ) -> bool {
        let counted = self.creators.entry(quota.owner.to_owned()).or_default();
        counted.retain(|until| *until > now);
        if counted.len() >= quota.max as usize {
            return false;
        }
        counted.push(after(now, ttl));
        let mut stored = session.clone();
        stored.expires_at = after(now, ttl);
        self.sessions.insert(session.id.clone(), stored);
        true
    }

    /// Whether `owner` has fewer than `max_open` open, unexpired batches.
    pub(super) fn may_open_batch(&self, owner: &str, max_open: u32, now: DateTime<Utc>) -> bool {
        let open = self
            .batches
            .values()
            .filter(|e| {
                e.batch.owner == owner
                    && e.batch.state == BatchState::Open
                    && e.batch.expires_at > now
            })
            .count();
        open < max_open as usize
    }

    /// Stores pending uploads, all or none; `limit` `None` counts them against nothing.
    pub(super) fn put_pending_capped(
        &mut self,
        batch_id: Uuid,
        uploads: &[PendingUpload],
        limit: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let entry = self.batch(batch_id, now).ok_or(StateError::NotFound)?;
        if let Some(limit) = limit {
            if entry.batch.state != BatchState::Open {
                return Err(StateError::BatchClosed);
            }
            let live = entry.live_pending(now, &HashSet::new());
            let fresh: HashSet<Uuid> = uploads
                .iter()
                .map(|u| u.photo_id)
                .filter(|id| !entry.pending.contains_key(id))
                .collect();
            if entry.batch.total + live + fresh.len() as u64 > limit {
                return Err(StateError::TooManyPhotos { limit });
            }
        }
        for upload in uploads {
            entry.pending.insert(upload.photo_id, upload.clone());
        }
        self.wrote(now);
        Ok(())
    }
}

impl BatchEntry {
    /// Drops the expired pending uploads, then counts the live ones not in `except`.
    pub(super) fn live_pending(&mut self, now: DateTime<Utc>, except: &HashSet<Uuid>) -> u64 {
        self.pending.retain(|_, u| u.expires_at > now);
        self.pending
            .keys()
            .filter(|id| !except.contains(id))
            .count() as u64
    }
}

/// Batch creation with the cap, for the trait method: `Ok(false)` when refused.
pub(super) fn create_capped(
    inner: &mut Inner,
    batch: &Batch,
    max_open: u32,
    now: DateTime<Utc>,
) -> bool {
    if !inner.may_open_batch(&batch.owner, max_open, now) {
        return false;
    }
    inner.insert_batch(batch, now);
    true
}
