//! What a completed batch's side effects (the `batch.completed` event, the callback) need
//! from the state store: a mark that each is done, and a claim on each while a handler runs
//! it, so that a copy of the finalisation (a redelivery, the reconciler's redrive) neither
//! runs an effect a live handler is running nor waits forever on one whose handler died.
//! Every [`StateStore`] provides it.
//!
//! [`StateStore`]: crate::StateStore

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tirage_core::codes::Effect;
use uuid::Uuid;

use crate::state_error::StateError;

/// The stored name of `effect`'s claim, beside the effect's own mark ([`Effect::as_str`]).
pub fn claim_field(effect: Effect) -> String {
    format!("{}_claimed", effect.as_str())
}

#[async_trait]
pub trait Effects: Send + Sync + 'static {
    /// Marks `effect` of a completed batch done; true for the first caller only. Call it
    /// after the effect succeeded.
    async fn mark_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError>;

    async fn is_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError>;

    /// Claims `effect` for the caller: true when it has no claim, or a claim dated before
    /// `now - stale_after` (its handler is taken for dead); the claim then dates from `now`.
    /// False while another handler's claim is fresh. `NotFound` when the batch is gone.
    async fn claim_effect(
        &self,
        batch_id: Uuid,
        effect: Effect,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Result<bool, StateError>;

    /// Dates the claim of `effect` from `now` (its handler is alive: a callback between
    /// attempts). `NotFound` when the batch is gone.
    async fn renew_effect_claim(
        &self,
        batch_id: Uuid,
        effect: Effect,
        now: DateTime<Utc>,
    ) -> Result<(), StateError>;

    /// Drops the claim of `effect`: its handler failed before the effect and will claim it
    /// again on its next attempt.
    async fn release_effect_claim(&self, batch_id: Uuid, effect: Effect) -> Result<(), StateError>;

    /// When the claim of `effect` was taken or last renewed, if it is claimed: the
    /// reconciler leaves an effect whose handler is alive (a callback retrying a slow
    /// receiver) instead of redriving it. `None` also when the batch is gone.
    async fn effect_claimed_at(
        &self,
        batch_id: Uuid,
        effect: Effect,
    ) -> Result<Option<DateTime<Utc>>, StateError>;
}
