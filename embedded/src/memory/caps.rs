//! The caps one client may not pass, by the rules of the Redis scripts: sessions per client
//! address (`count_session.lua`), open batches per session (`create_batch.lua`,
//! `hold_open_batch.lua`), pending uploads against the photo limit (`put_pending.lua`,
//! `add_photos.lua`), requests per window (`rate_limit.lua`) and event streams per session
//! (`stream_lease.lua`). Each runs under the store's one lock, so it is atomic.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{BatchEntry, Inner, RateWindow, after};
use tirage_core::model::BatchState;
use tirage_ports::{Cap, PendingUpload, RateDecision, Session, SessionQuota, StateError};

impl Inner {
    /// Stores `session` unless `quota` is given and its creator made `quota.max` sessions
    /// within the last `ttl`.
    pub(super) fn put_session(
        &mut self,
        session: &Session,
        ttl: Duration,
        quota: Option<SessionQuota<'_>>,
        now: DateTime<Utc>,
    ) -> bool {
        if let Some(quota) = quota {
            let counted = self.creators.entry(quota.owner.to_owned()).or_default();
            counted.retain(|until| *until > now);
            if !quota.max.admits_one_more(counted.len()) {
                return false;
            }
            counted.push(after(now, ttl));
        }
        let mut stored = session.clone();
        stored.expires_at = after(now, ttl);
        self.sessions.insert(session.id.clone(), stored);
        true
    }

    /// Whether `owner` has fewer than `max_open` open, unexpired batches.
    pub(super) fn may_open_batch(&self, owner: &str, max_open: Cap, now: DateTime<Utc>) -> bool {
        if max_open == Cap::Unlimited {
            return true;
        }
        let open = self
            .batches
            .values()
            .filter(|e| {
                e.batch.owner == owner
                    && e.batch.state == BatchState::Open
                    && e.batch.expires_at > now
            })
            .count();
        max_open.admits_one_more(open)
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

impl Inner {
    /// Counts one request against `key`'s fixed window (`rate_limit.lua`).
    pub(super) fn count_request(
        &mut self,
        key: &str,
        hits: u32,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> RateDecision {
        let slot = self
            .rates
            .entry(key.to_owned())
            .or_insert_with(|| RateWindow {
                count: 0,
                ends_at: after(now, window),
            });
        if slot.ends_at <= now {
            slot.count = 0;
            slot.ends_at = after(now, window);
        }
        slot.count = slot.count.saturating_add(hits);
        if slot.count > limit {
            RateDecision::Limited {
                retry_after: (slot.ends_at - now).to_std().unwrap_or(Duration::ZERO),
            }
        } else {
            RateDecision::Allowed {
                remaining: limit - slot.count,
            }
        }
    }

    /// Leases `stream_id` until `until` unless the session holds `limit` live leases of other
    /// streams already (`stream_lease.lua`).
    pub(super) fn open_stream(
        &mut self,
        session_id: &str,
        stream_id: Uuid,
        limit: u32,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        let leases = self.streams.entry(session_id.to_owned()).or_default();
        leases.retain(|_, lease| *lease > now);
        if !leases.contains_key(&stream_id) && leases.len() >= limit as usize {
            return false;
        }
        leases.insert(stream_id, until);
        true
    }
}
