//! A set of batches ordered by expiry, with lookup by id: the embedded store's batch index
//! and unsettled list, paged in order without sorting everything on every page.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use tirage_ports::upkeep::IndexedBatch;
use uuid::Uuid;

#[derive(Debug, Default)]
pub(super) struct ExpiryIndex {
    by_id: HashMap<Uuid, DateTime<Utc>>,
    ordered: BTreeSet<(DateTime<Utc>, Uuid)>,
}

impl ExpiryIndex {
    /// Lists `id` as expiring at `expires_at` (moving it when listed already).
    pub fn insert(&mut self, id: Uuid, expires_at: DateTime<Utc>) {
        if let Some(before) = self.by_id.insert(id, expires_at) {
            self.ordered.remove(&(before, id));
        }
        self.ordered.insert((expires_at, id));
    }

    pub fn remove(&mut self, id: Uuid) {
        if let Some(expires_at) = self.by_id.remove(&id) {
            self.ordered.remove(&(expires_at, id));
        }
    }

    /// Moves a listed `id` to `at` when that is sooner; an unlisted id stays out.
    pub fn bring_forward(&mut self, id: Uuid, at: DateTime<Utc>) {
        if let Some(&expires_at) = self.by_id.get(&id)
            && at < expires_at
        {
            self.insert(id, at);
        }
    }

    /// At most `limit` (at least one) from `offset`, soonest expiry first.
    pub fn page(&self, offset: usize, limit: usize) -> Vec<IndexedBatch> {
        self.ordered
            .iter()
            .skip(offset)
            .take(limit.max(1))
            .map(|&(expires_at, id)| IndexedBatch { id, expires_at })
            .collect()
    }
}
