//! [`Upkeep`] on Redis: the lease is a key set with `NX PX` (`take_lease.lua`); the index a
//! sorted set `P batches` (batch id scored by expiry in unix ms) written before the batch
//! itself, and expiring with the last batch it lists; the watch a field of the batch hash
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

impl RedisStateStore {
    /// Adds a batch to the index, before the batch is written: a batch is never live
    /// without being indexed. The index outlives the last batch it lists by
    /// [`INDEX_GRACE_MS`], so an expired batch stays listed until a pass sweeps it.
    pub(super) async fn index_batch(&self, batch: &Batch) -> Result<(), StateError> {
        let expires = batch.expires_at.timestamp_millis();
        let index_expires = expires.saturating_add(INDEX_GRACE_MS);
        let key = self.keys.batch_index();
        let (): () = redis::pipe()
            .zadd(&key, batch.id.to_string(), expires)
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&key)
            .arg(index_expires)
            .arg("GT")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&key)
            .arg(index_expires)
            .arg("NX")
            .ignore()
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(())
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
        let stop = offset.saturating_add(limit.max(1)) - 1;
        let entries: Vec<(String, f64)> = self
            .conn()
            .zrange_withscores(self.keys.batch_index(), offset as isize, stop as isize)
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

    async fn forget_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        let _: i64 = self
            .conn()
            .zrem(self.keys.batch_index(), batch_id.to_string())
            .await
            .map_err(redis_error)?;
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
