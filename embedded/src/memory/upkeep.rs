//! [`Upkeep`] in memory, under the store's one lock.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{MemoryStateStore, after};
use tirage_core::model::PhotoRecord;
use tirage_ports::StateError;
use tirage_ports::upkeep::{ConsumedMark, IndexedBatch, Upkeep};

#[async_trait]
impl Upkeep for MemoryStateStore {
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let free = inner
            .leases
            .get(name)
            .is_none_or(|(owner, until)| owner == holder || *until <= now);
        if free {
            inner
                .leases
                .insert(name.to_owned(), (holder.to_owned(), after(now, ttl)));
        }
        Ok(free)
    }

    async fn indexed_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError> {
        Ok(self.lock().index.page(offset, limit))
    }

    async fn unsettled_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError> {
        Ok(self.lock().unsettled.page(offset, limit))
    }

    async fn settle_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        self.lock().unsettled.remove(batch_id);
        Ok(())
    }

    async fn forget_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        let mut inner = self.lock();
        inner.index.remove(batch_id);
        inner.unsettled.remove(batch_id);
        inner.storage.release(batch_id, None);
        Ok(())
    }

    async fn sweep_batch_at(&self, batch_id: Uuid, at: DateTime<Utc>) -> Result<(), StateError> {
        self.lock().index.bring_forward(batch_id, at);
        Ok(())
    }

    async fn advance_consumed_mark(
        &self,
        published_at: DateTime<Utc>,
        taken_at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let mut inner = self.lock();
        let mark = inner.consumed_mark.get_or_insert(ConsumedMark {
            through: published_at,
            at: taken_at,
        });
        mark.through = mark.through.max(published_at);
        mark.at = mark.at.max(taken_at);
        Ok(())
    }

    async fn consumed_mark(&self) -> Result<Option<ConsumedMark>, StateError> {
        Ok(self.lock().consumed_mark)
    }

    async fn restore_lost_photos(&self, batch_id: Uuid) -> Result<Vec<Uuid>, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let Some(entry) = inner.batch(batch_id, now) else {
            return Ok(Vec::new());
        };
        let lost: Vec<Uuid> = entry
            .order
            .iter()
            .filter(|id| !entry.photos.contains_key(id))
            .copied()
            .collect();
        for id in &lost {
            entry
                .photos
                .insert(*id, PhotoRecord::queued(*id, id.to_string()));
        }
        Ok(lost)
    }

    async fn unchanged_since(
        &self,
        batch_id: Uuid,
        marker: &str,
        now: DateTime<Utc>,
        restart: bool,
    ) -> Result<Option<DateTime<Utc>>, StateError> {
        let clock_now = self.clock.now();
        let mut inner = self.lock();
        let Some(entry) = inner.batch(batch_id, clock_now) else {
            return Ok(None);
        };
        match &entry.watch {
            Some((seen, since)) if seen == marker && !restart => Ok(Some(*since)),
            _ => {
                entry.watch = Some((marker.to_owned(), now));
                Ok(Some(now))
            }
        }
    }
}
