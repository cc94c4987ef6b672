//! [`Effects`] on Redis: one hash per batch (`effects`), expiring with the batch; a done
//! effect is a field set once (`mark_effect.lua`), a claim a field holding its time
//! (`claim_effect.lua`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStateStore;
use super::codec::{millis, redis_error};
use tirage_core::codes::Effect;
use tirage_ports::StateError;
use tirage_ports::effects::{Effects, claim_field};

impl RedisStateStore {
    /// Runs `claim_effect.lua` in `mode`; true when the caller holds the claim after it.
    async fn claim(
        &self,
        batch_id: Uuid,
        effect: Effect,
        mode: &str,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Result<bool, StateError> {
        let held: i64 = self
            .scripts
            .claim_effect(&self.keys.batch(batch_id))
            .arg(claim_field(effect))
            .arg(mode)
            .arg(now.timestamp_millis())
            .arg(millis(stale_after))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        match held {
            -1 => Err(StateError::NotFound),
            n => Ok(n == 1),
        }
    }
}

#[async_trait]
impl Effects for RedisStateStore {
    async fn mark_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError> {
        let first: i64 = self
            .scripts
            .mark_effect(&self.keys.batch(batch_id))
            .arg(effect.as_str())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        match first {
            -1 => Err(StateError::NotFound),
            n => Ok(n == 1),
        }
    }

    async fn effect_claimed_at(
        &self,
        batch_id: Uuid,
        effect: Effect,
    ) -> Result<Option<DateTime<Utc>>, StateError> {
        let held: Option<i64> = self
            .conn()
            .hget(self.keys.batch(batch_id).effects, claim_field(effect))
            .await
            .map_err(redis_error)?;
        // A claim stored before claims had times ('1') reads as the oldest date.
        Ok(held.map(|ms| DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)))
    }

    async fn is_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError> {
        self.conn()
            .hexists(self.keys.batch(batch_id).effects, effect.as_str())
            .await
            .map_err(redis_error)
    }

    async fn claim_effect(
        &self,
        batch_id: Uuid,
        effect: Effect,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Result<bool, StateError> {
        self.claim(batch_id, effect, "take", now, stale_after).await
    }

    async fn renew_effect_claim(
        &self,
        batch_id: Uuid,
        effect: Effect,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.claim(batch_id, effect, "renew", now, Duration::ZERO)
            .await
            .map(drop)
    }

    async fn release_effect_claim(&self, batch_id: Uuid, effect: Effect) -> Result<(), StateError> {
        match self
            .claim(batch_id, effect, "release", Utc::now(), Duration::ZERO)
            .await
        {
            Ok(_) | Err(StateError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
