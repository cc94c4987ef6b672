//! [`Upkeep`] on Redis: the lease is a key set with `NX PX` (`take_lease.lua`); the index a
//! sorted set `P batches` (batch id scored by expiry in unix ms) written before the batch
//! itself, and outliving the last batch it lists by a week, as does its subset of batches
//! not yet settled, `P batches:unsettled`; the watch a field of the batch hash
//! (`watch_batch.lua`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStateStore;
use super::codec::{millis, redis_error};
use tirage_core::model::Batch;
use tirage_ports::StateError;
use tirage_ports::upkeep::{ConsumedMark, IndexedBatch, Upkeep};

/// How long the consumed mark outlives its last advance: a week, longer than any batch
/// lives, so an idle deployment forgets it only when nothing it describes is left.
const CONSUMED_MARK_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// How long the index outlives its newest batch: a week, for a reconciler that was not
/// running when batches expired (workers scaled to zero without the scheduled pass) to
/// sweep their objects when it comes back. Without it, the newest batch would leave the
/// index the moment it expires, before any pass could remove its objects.
const INDEX_GRACE_MS: i64 = 7 * 24 * 3600 * 1000;

/// How often at most the unsettled index is filled again from the whole index (harmless:
/// a settled batch copied back is checked once and settled again).
const SEED_EVERY_MS: u64 = 7 * 24 * 3600 * 1000;

/// Batches copied at a time when seeding the unsettled index.
const SEED_PAGE: isize = 1000;

impl RedisStateStore {
    /// Adds a batch to the index and the unsettled index, before the batch is written: a
    /// batch is never live without being indexed. Both outlive the last batch they list by
    /// [`INDEX_GRACE_MS`], so an expired batch stays listed until a pass sweeps it.
    pub(super) async fn index_batch(&self, batch: &Batch) -> Result<(), StateError> {
        let expires = batch.expires_at.timestamp_millis();
        for key in [self.keys.batch_index(), self.keys.unsettled_index()] {
            self.add_indexed(&key, &[(expires, batch.id.to_string())])
                .await?;
        }
        Ok(())
    }

    /// Adds `(expiry, id)` entries to the sorted set `key`, which then expires
    /// [`INDEX_GRACE_MS`] after the latest of them.
    async fn add_indexed(&self, key: &str, entries: &[(i64, String)]) -> Result<(), StateError> {
        let Some(latest) = entries.iter().map(|(expires, _)| *expires).max() else {
            return Ok(());
        };
        let key_expires = latest.saturating_add(INDEX_GRACE_MS);
        let (): () = redis::pipe()
            .zadd_multiple(key, entries)
            .ignore()
            .cmd("PEXPIREAT")
            .arg(key)
            .arg(key_expires)
            .arg("GT")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(key)
            .arg(key_expires)
            .arg("NX")
            .ignore()
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    /// Fills the unsettled index from the whole index, at most once per [`SEED_EVERY_MS`]:
    /// batches indexed before the unsettled index existed (an upgrade) are checked too.
    async fn seed_unsettled(&self) -> Result<(), StateError> {
        let first: Option<String> = redis::cmd("SET")
            .arg(self.keys.unsettled_seeded())
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(SEED_EVERY_MS)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        if first.is_none() {
            return Ok(());
        }
        let (index, unsettled) = (self.keys.batch_index(), self.keys.unsettled_index());
        let mut start = 0;
        loop {
            let page: Vec<(String, f64)> = self
                .conn()
                .zrange_withscores(&index, start, start + SEED_PAGE - 1)
                .await
                .map_err(redis_error)?;
            let entries: Vec<(i64, String)> = page
                .into_iter()
                .map(|(id, score)| (score as i64, id))
                .collect();
            self.add_indexed(&unsettled, &entries).await?;
            if (entries.len() as isize) < SEED_PAGE {
                return Ok(());
            }
            start += SEED_PAGE;
        }
    }

    /// At most `limit` entries of the sorted set `key` from `offset`, soonest expiry first.
    async fn indexed_page(
        &self,
        key: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError> {
        let stop = offset.saturating_add(limit.max(1)) - 1;
        let entries: Vec<(String, f64)> = self
            .conn()
            .zrange_withscores(key, offset as isize, stop as isize)
            .await
            .map_err(redis_error)?;
        Ok(entries
            .into_iter()
            .filter_map(|(id, score)| {
                let id = Uuid::parse_str(&id).ok()?;
                let expires_at = DateTime::<Utc>::from_timestamp_millis(score as i64)?;
                Some(IndexedBatch { id, expires_at })
            })
            .collect())
    }
}

#[async_trait]
impl Upkeep for RedisStateStore {
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let taken: i64 = self
            .scripts
            .take_lease(&self.keys.lease(name))
            .arg(holder)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(taken == 1)
    }

    async fn indexed_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError> {
        self.indexed_page(&self.keys.batch_index(), offset, limit)
            .await
    }

    async fn unsettled_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError> {
        if offset == 0 {
            self.seed_unsettled().await?;
        }
        self.indexed_page(&self.keys.unsettled_index(), offset, limit)
            .await
    }

    async fn settle_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        let _: i64 = self
            .conn()
            .zrem(self.keys.unsettled_index(), batch_id.to_string())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn forget_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        // Given back first: a failure after it forgets the batch on the next pass, and the
        // record, once released, is not released twice.
        self.release_stored(batch_id).await?;
        for key in [self.keys.batch_index(), self.keys.unsettled_index()] {
            let _: i64 = self
                .conn()
                .zrem(key, batch_id.to_string())
                .await
                .map_err(redis_error)?;
        }
        Ok(())
    }

    async fn sweep_batch_at(&self, batch_id: Uuid, at: DateTime<Utc>) -> Result<(), StateError> {
        // XX: only a member already indexed; LT: only a lower score (Redis 6.2).
        let _: i64 = redis::cmd("ZADD")
            .arg(self.keys.batch_index())
            .arg("XX")
            .arg("LT")
            .arg(at.timestamp_millis())
            .arg(batch_id.to_string())
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn advance_consumed_mark(
        &self,
        published_at: DateTime<Utc>,
        taken_at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        // Both fields only rise, in one script: no read-modify-write race between workers.
        let (): () = self
            .scripts
            .advance_consumed(&self.keys.consumed_mark())
            .arg(published_at.timestamp_millis())
            .arg(taken_at.timestamp_millis())
            .arg(CONSUMED_MARK_TTL_MS)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn consumed_mark(&self) -> Result<Option<ConsumedMark>, StateError> {
        let (through, at): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(self.keys.consumed_mark())
            .arg("through")
            .arg("at")
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        let mark = |ms: Option<i64>| ms.and_then(DateTime::<Utc>::from_timestamp_millis);
        Ok(mark(through)
            .zip(mark(at))
            .map(|(through, at)| ConsumedMark { through, at }))
    }

    async fn restore_lost_photos(&self, batch_id: Uuid) -> Result<Vec<Uuid>, StateError> {
        let ids: Vec<String> = self
            .scripts
            .restore_lost(&self.keys.batch(batch_id))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(ids
            .iter()
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect())
    }

    async fn unchanged_since(
        &self,
        batch_id: Uuid,
        marker: &str,
        now: DateTime<Utc>,
        restart: bool,
    ) -> Result<Option<DateTime<Utc>>, StateError> {
        let since: i64 = self
            .scripts
            .watch_batch(&self.keys.batch_hash(batch_id))
            .arg(marker)
            .arg(now.timestamp_millis())
            .arg(if restart { "1" } else { "0" })
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        if since < 0 {
            return Ok(None);
        }
        Ok(DateTime::<Utc>::from_timestamp_millis(since))
    }
}
