//! Every port of the state store through [`Durable`]: reads go to the store serving now,
//! writes are journaled with what losing them would mean. A write's arguments are owned by
//! its replay, which runs it again on the store rebuilt after a restart.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tirage_core::codes::Effect;
use tirage_core::model::{Batch, PhotoOutcome, PhotoRecord};
use tirage_ports::{
    Batches, Cap, CloseResult, ConsumedMark, Effects, IndexedBatch, PhotoPage, RecordResult,
    RunHold, RunStart, Runs, StateError, StateStore, Upkeep,
};
use uuid::Uuid;

use super::{Durable, Lost};

mod clients;

/// The store a replay runs on.
type Store = std::sync::Arc<tirage_embedded::MemoryStateStore>;

fn nothing<T>(_: &T) -> Lost {
    Lost::Nothing
}

#[async_trait]
impl StateStore for Durable {
    async fn ping(&self) -> Result<(), StateError> {
        self.read(|s| async move { s.ping().await }).await
    }
}

#[async_trait]
impl Batches for Durable {
    async fn create_batch(&self, batch: &Batch, max_open: Cap) -> Result<bool, StateError> {
        let (batch, id) = (batch.clone(), batch.id);
        let call = move |s: Store| {
            let batch = batch.clone();
            async move { s.create_batch(&batch, max_open).await }
        };
        let lost = |created: &bool| {
            if *created {
                Lost::Created(id)
            } else {
                Lost::Nothing
            }
        };
        self.write(call, lost).await
    }

    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError> {
        self.read(|s| async move { s.get_batch(batch_id).await })
            .await
    }

    async fn add_photos(
        &self,
        batch_id: Uuid,
        photos: &[PhotoRecord],
        limit: u64,
    ) -> Result<Batch, StateError> {
        let photos = photos.to_vec();
        let ids: Vec<Uuid> = photos.iter().map(|p| p.id).collect();
        let call = move |s: Store| {
            let photos = photos.clone();
            async move { s.add_photos(batch_id, &photos, limit).await }
        };
        self.write(call, |_| Lost::Registered(ids)).await
    }

    async fn close_batch(&self, batch_id: Uuid) -> Result<CloseResult, StateError> {
        let call = move |s: Store| async move { s.close_batch(batch_id).await };
        self.write(call, |_| Lost::Closed(batch_id)).await
    }

    async fn get_photo(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PhotoRecord>, StateError> {
        self.read(|s| async move { s.get_photo(batch_id, photo_id).await })
            .await
    }

    async fn list_photos(
        &self,
        batch_id: Uuid,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PhotoPage, StateError> {
        self.read(|s| async move { s.list_photos(batch_id, cursor, limit).await })
            .await
    }

    async fn delete_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        let call = move |s: Store| async move { s.delete_batch(batch_id).await };
        self.write(call, |()| Lost::Deleted(batch_id)).await
    }
}

#[async_trait]
impl Runs for Durable {
    async fn record_outcome(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        outcome: &PhotoOutcome,
    ) -> Result<RecordResult, StateError> {
        let outcome = outcome.clone();
        let call = move |s: Store| {
            let outcome = outcome.clone();
            async move { s.record_outcome(batch_id, photo_id, &outcome).await }
        };
        let lost = |result: &RecordResult| match result {
            RecordResult::Recorded { .. } => Lost::Recorded(photo_id),
            _ => Lost::Nothing,
        };
        self.write(call, lost).await
    }

    async fn crashed_runs(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u32, StateError> {
        // It may clear a lapsed hold as it counts it: a write.
        let call = move |s: Store| async move { s.crashed_runs(batch_id, photo_id, now).await };
        self.write(call, nothing).await
    }

    async fn start_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<RunStart, StateError> {
        let call = move |s: Store| async move { s.start_run(batch_id, photo_id, hold).await };
        let lost = |start: &RunStart| match start {
            RunStart::Started { .. } => Lost::RunStarted(photo_id),
            RunStart::Held => Lost::Nothing,
        };
        self.write(call, lost).await
    }

    async fn renew_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<bool, StateError> {
        let call = move |s: Store| async move { s.renew_run(batch_id, photo_id, hold).await };
        self.write(call, nothing).await
    }

    async fn end_run(&self, batch_id: Uuid, photo_id: Uuid, token: Uuid) -> Result<(), StateError> {
        let call = move |s: Store| async move { s.end_run(batch_id, photo_id, token).await };
        self.write(call, |()| Lost::RunEnded(photo_id)).await
    }
}

#[async_trait]
impl Effects for Durable {
    async fn mark_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError> {
        let call = move |s: Store| async move { s.mark_effect_done(batch_id, effect).await };
        let lost = |first: &bool| {
            if *first {
                Lost::EffectMarked(batch_id, effect)
            } else {
                Lost::Nothing
            }
        };
        self.write(call, lost).await
    }

    async fn effect_claimed_at(
        &self,
        batch_id: Uuid,
        effect: Effect,
    ) -> Result<Option<DateTime<Utc>>, StateError> {
        self.read(|s| async move { s.effect_claimed_at(batch_id, effect).await })
            .await
    }

    async fn is_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError> {
        self.read(|s| async move { s.is_effect_done(batch_id, effect).await })
            .await
    }

    async fn claim_effect(
        &self,
        batch_id: Uuid,
        effect: Effect,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Result<bool, StateError> {
        let call =
            move |s: Store| async move { s.claim_effect(batch_id, effect, now, stale_after).await };
        self.write(call, nothing).await
    }

    async fn renew_effect_claim(
        &self,
        batch_id: Uuid,
        effect: Effect,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let call = move |s: Store| async move { s.renew_effect_claim(batch_id, effect, now).await };
        self.write(call, nothing).await
    }

    async fn release_effect_claim(&self, batch_id: Uuid, effect: Effect) -> Result<(), StateError> {
        let call = move |s: Store| async move { s.release_effect_claim(batch_id, effect).await };
        self.write(call, nothing).await
    }
}

#[async_trait]
impl Upkeep for Durable {
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let call = move |s: Store| {
            let (name, holder) = (name.clone(), holder.clone());
            async move { s.take_lease(&name, &holder, ttl).await }
        };
        self.write(call, nothing).await
    }

    async fn indexed_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError> {
        self.read(|s| async move { s.indexed_batches(offset, limit).await })
            .await
    }

    async fn unsettled_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError> {
        self.read(|s| async move { s.unsettled_batches(offset, limit).await })
            .await
    }

    async fn settle_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        let call = move |s: Store| async move { s.settle_batch(batch_id).await };
        self.write(call, nothing).await
    }

    async fn forget_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        let call = move |s: Store| async move { s.forget_batch(batch_id).await };
        self.write(call, nothing).await
    }

    async fn sweep_batch_at(&self, batch_id: Uuid, at: DateTime<Utc>) -> Result<(), StateError> {
        let call = move |s: Store| async move { s.sweep_batch_at(batch_id, at).await };
        self.write(call, nothing).await
    }

    async fn restore_lost_photos(&self, batch_id: Uuid) -> Result<Vec<Uuid>, StateError> {
        let call = move |s: Store| async move { s.restore_lost_photos(batch_id).await };
        self.write(call, nothing).await
    }

    async fn advance_consumed_mark(
        &self,
        published_at: DateTime<Utc>,
        taken_at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let call =
            move |s: Store| async move { s.advance_consumed_mark(published_at, taken_at).await };
        self.write(call, nothing).await
    }

    async fn consumed_mark(&self) -> Result<Option<ConsumedMark>, StateError> {
        self.read(|s| async move { s.consumed_mark().await }).await
    }

    async fn unchanged_since(
        &self,
        batch_id: Uuid,
        marker: &str,
        now: DateTime<Utc>,
        restart: bool,
    ) -> Result<Option<DateTime<Utc>>, StateError> {
        let marker = marker.to_owned();
        let call = move |s: Store| {
            let marker = marker.clone();
            async move { s.unchanged_since(batch_id, &marker, now, restart).await }
        };
        self.write(call, nothing).await
    }
}
