//! [`Effects`] in memory, under the store's one lock: the marks and claims live in the
//! batch's entry and go with it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::MemoryStateStore;
use tirage_core::codes::Effect;
use tirage_ports::StateError;
use tirage_ports::effects::Effects;

#[async_trait]
impl Effects for MemoryStateStore {
    async fn mark_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        Ok(entry.effects.insert(effect))
    }

    async fn is_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        Ok(inner
            .batch(batch_id, now)
            .is_some_and(|e| e.effects.contains(&effect)))
    }

    async fn claim_effect(
        &self,
        batch_id: Uuid,
        effect: Effect,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Result<bool, StateError> {
        let today = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, today).ok_or(StateError::NotFound)?;
        let stale_after = chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
        let fresh = entry
            .claims
            .get(&effect)
            .is_some_and(|claimed| *claimed > now - stale_after);
        if fresh {
            return Ok(false);
        }
        entry.claims.insert(effect, now);
        Ok(true)
    }

    async fn renew_effect_claim(
        &self,
        batch_id: Uuid,
        effect: Effect,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let today = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, today).ok_or(StateError::NotFound)?;
        entry.claims.insert(effect, now);
        Ok(())
    }

    async fn effect_claimed_at(
        &self,
        batch_id: Uuid,
        effect: Effect,
    ) -> Result<Option<DateTime<Utc>>, StateError> {
        let today = self.clock.now();
        let mut inner = self.lock();
        Ok(inner
            .batch(batch_id, today)
            .and_then(|entry| entry.claims.get(&effect).copied()))
    }

    async fn release_effect_claim(&self, batch_id: Uuid, effect: Effect) -> Result<(), StateError> {
        let today = self.clock.now();
        if let Some(entry) = self.lock().batch(batch_id, today) {
            entry.claims.remove(&effect);
        }
        Ok(())
    }
}
