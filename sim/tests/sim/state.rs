//! The state store as a node or an API replica sees it: the one shared `MemoryStateStore`,
//! seen through a wrapper that tells the ledger what it answered to whom (each outcome
//! recorded, each run counted) and the engine whose run was just counted. It injects no
//! fault in this slice; every call passes through the actor's [`Life`] (none returns once
//! the actor is killed).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tirage_core::codes::Effect;
use tirage_core::model::{Batch, PhotoOutcome, PhotoRecord};
use tirage_ports::{
    Batches, Cap, ClientLimits, CloseResult, ConsumedMark, Effects, IndexedBatch, PendingUpload,
    PendingUploads, PhotoPage, Progress, ProgressFeed, RateDecision, RecordResult, RunHold,
    RunStart, Runs, Session, SessionQuota, Sessions, StateError, StateStore, Upkeep,
};
use tirage_ports::{Charge, Payer, SessionRate, Storage, StorageCaps, StoredBytes};
use uuid::Uuid;

use crate::engine::note_run_started;
use crate::ledger::Ledger;
use crate::life::Life;

pub struct ObservedState {
    inner: Arc<dyn StateStore>,
    actor: String,
    ledger: Arc<Ledger>,
    /// Once the actor is killed, no call returns.
    life: Arc<Life>,
}

impl ObservedState {
    pub fn new(
        inner: Arc<dyn StateStore>,
        (actor, life): (&str, &Arc<Life>),
        ledger: Arc<Ledger>,
    ) -> ObservedState {
        ObservedState {
            inner,
            actor: actor.to_owned(),
            ledger,
            life: life.clone(),
        }
    }
}

fn outcome_name(outcome: &PhotoOutcome) -> String {
    match outcome {
        PhotoOutcome::Done { .. } => "done".to_owned(),
        PhotoOutcome::Failed { code } => format!("failed:{}", code.as_str()),
    }
}

#[async_trait]
impl StateStore for ObservedState {
    async fn ping(&self) -> Result<(), StateError> {
        self.life.guard(self.inner.ping()).await
    }
}

#[async_trait]
impl Sessions for ObservedState {
    async fn put_session(
        &self,
        session: &Session,
        ttl: Duration,
        quota: Option<SessionQuota<'_>>,
    ) -> Result<bool, StateError> {
        self.life
            .guard(self.inner.put_session(session, ttl, quota))
            .await
    }

    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError> {
        self.life.guard(self.inner.touch_session(id, ttl)).await
    }
}

#[async_trait]
impl ClientLimits for ObservedState {
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError> {
        self.life
            .guard(self.inner.rate_limit(key, limit, window))
            .await
    }

    async fn open_stream(
        &self,
        session_id: &str,
        stream_id: Uuid,
        limit: u32,
        lease: Duration,
    ) -> Result<bool, StateError> {
        self.life
            .guard(self.inner.open_stream(session_id, stream_id, limit, lease))
            .await
    }

    async fn charge_session_requests(
        &self,
        session_id: &str,
        hits: u32,
        rate: SessionRate,
    ) -> Result<RateDecision, StateError> {
        self.life
            .guard(self.inner.charge_session_requests(session_id, hits, rate))
            .await
    }

    async fn close_stream(&self, session_id: &str, stream_id: Uuid) -> Result<(), StateError> {
        self.life
            .guard(self.inner.close_stream(session_id, stream_id))
            .await
    }
}

#[async_trait]
impl Batches for ObservedState {
    async fn create_batch(&self, batch: &Batch, max_open: Cap) -> Result<bool, StateError> {
        self.life
            .guard(self.inner.create_batch(batch, max_open))
            .await
    }

    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError> {
        self.life.guard(self.inner.get_batch(batch_id)).await
    }

    async fn add_photos(
        &self,
        batch_id: Uuid,
        photos: &[PhotoRecord],
        limit: u64,
    ) -> Result<Batch, StateError> {
        let added = self
            .life
            .guard(self.inner.add_photos(batch_id, photos, limit))
            .await;
        let subject = self.ledger.batch_label(batch_id);
        let result = match &added {
            Ok(b) => format!("total {}", b.total),
            Err(e) => format!("error {e}"),
        };
        self.ledger
            .note(&self.actor, "add_photos", &subject, &result);
        added
    }

    async fn close_batch(&self, batch_id: Uuid) -> Result<CloseResult, StateError> {
        let closed = self.life.guard(self.inner.close_batch(batch_id)).await;
        let subject = self.ledger.batch_label(batch_id);
        let result = match &closed {
            Ok(c) => format!("{:?} completed_now={}", c.batch.state, c.completed_now),
            Err(e) => format!("error {e}"),
        };
        self.ledger
            .note(&self.actor, "close_batch", &subject, &result);
        closed
    }

    async fn get_photo(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PhotoRecord>, StateError> {
        self.life
            .guard(self.inner.get_photo(batch_id, photo_id))
            .await
    }

    async fn list_photos(
        &self,
        batch_id: Uuid,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PhotoPage, StateError> {
        self.life
            .guard(self.inner.list_photos(batch_id, cursor, limit))
            .await
    }

    async fn delete_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        self.life.guard(self.inner.delete_batch(batch_id)).await
    }
}

#[async_trait]
impl Runs for ObservedState {
    async fn record_outcome(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        outcome: &PhotoOutcome,
    ) -> Result<RecordResult, StateError> {
        let result = self
            .life
            .guard(self.inner.record_outcome(batch_id, photo_id, outcome))
            .await;
        let what = outcome_name(outcome);
        match &result {
            Ok(RecordResult::Recorded { completed_now, .. }) => {
                let completed = if *completed_now { " completed_now" } else { "" };
                self.ledger
                    .recorded(&self.actor, photo_id, &format!("{what}{completed}"));
            }
            Ok(RecordResult::AlreadyRecorded { .. }) => {
                let subject = self.ledger.photo_label(photo_id);
                self.ledger
                    .note(&self.actor, "record", &subject, &format!("{what}: already"));
                self.ledger.count("already_recorded");
            }
            Ok(RecordResult::UnknownPhoto { .. }) => {
                let subject = self.ledger.photo_label(photo_id);
                self.ledger.note(
                    &self.actor,
                    "record",
                    &subject,
                    &format!("{what}: unknown photo"),
                );
                self.ledger.count("unknown_photo");
            }
            Err(e) => {
                let subject = self.ledger.photo_label(photo_id);
                self.ledger.note(
                    &self.actor,
                    "record",
                    &subject,
                    &format!("{what}: error {e}"),
                );
            }
        }
        result
    }

    async fn crashed_runs(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u32, StateError> {
        self.life
            .guard(self.inner.crashed_runs(batch_id, photo_id, now))
            .await
    }

    async fn start_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<RunStart, StateError> {
        let started = self
            .life
            .guard(self.inner.start_run(batch_id, photo_id, hold))
            .await;
        if let Ok(start) = &started {
            let subject = self.ledger.photo_label(photo_id);
            let what = match start {
                RunStart::Started { crashed } => format!("started, {crashed} crashed before"),
                RunStart::Held => "held by another run".to_owned(),
            };
            self.ledger.note(&self.actor, "start_run", &subject, &what);
            match start {
                RunStart::Started { .. } => {
                    note_run_started(batch_id, photo_id);
                    self.ledger.run_started(&self.actor, photo_id);
                }
                RunStart::Held => self.ledger.count("held_copies"),
            }
        }
        started
    }

    async fn renew_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<bool, StateError> {
        self.life
            .guard(self.inner.renew_run(batch_id, photo_id, hold))
            .await
    }

    async fn end_run(&self, batch_id: Uuid, photo_id: Uuid, token: Uuid) -> Result<(), StateError> {
        self.life
            .guard(self.inner.end_run(batch_id, photo_id, token))
            .await
    }
}

#[async_trait]
impl PendingUploads for ObservedState {
    async fn put_pending_uploads(
        &self,
        batch_id: Uuid,
        uploads: &[PendingUpload],
        limit: u64,
    ) -> Result<(), StateError> {
        self.life
            .guard(self.inner.put_pending_uploads(batch_id, uploads, limit))
            .await
    }

    async fn put_pending_upload(
        &self,
        batch_id: Uuid,
        upload: &PendingUpload,
    ) -> Result<(), StateError> {
        self.life
            .guard(self.inner.put_pending_upload(batch_id, upload))
            .await
    }

    async fn take_pending_upload(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PendingUpload>, StateError> {
        self.life
            .guard(self.inner.take_pending_upload(batch_id, photo_id))
            .await
    }
}

#[async_trait]
impl Progress for ObservedState {
    async fn watch_progress(&self) -> Result<ProgressFeed, StateError> {
        self.life.guard(self.inner.watch_progress()).await
    }
}

#[async_trait]
impl Upkeep for ObservedState {
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        self.life
            .guard(self.inner.take_lease(name, holder, ttl))
            .await
    }

    async fn indexed_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError> {
        self.life
            .guard(self.inner.indexed_batches(offset, limit))
            .await
    }

    async fn unsettled_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError> {
        self.life
            .guard(self.inner.unsettled_batches(offset, limit))
            .await
    }

    async fn settle_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        self.life.guard(self.inner.settle_batch(batch_id)).await
    }

    async fn forget_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        self.life.guard(self.inner.forget_batch(batch_id)).await
    }

    async fn sweep_batch_at(&self, batch_id: Uuid, at: DateTime<Utc>) -> Result<(), StateError> {
        self.life
            .guard(self.inner.sweep_batch_at(batch_id, at))
            .await
    }

    async fn restore_lost_photos(&self, batch_id: Uuid) -> Result<Vec<Uuid>, StateError> {
        self.life
            .guard(self.inner.restore_lost_photos(batch_id))
            .await
    }

    // Not in the ledger: workers call it when a second of wall time has passed, which
    // virtual time does not decide.
    async fn advance_consumed_mark(
        &self,
        published_at: DateTime<Utc>,
        taken_at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.life
            .guard(self.inner.advance_consumed_mark(published_at, taken_at))
            .await
    }

    async fn consumed_mark(&self) -> Result<Option<ConsumedMark>, StateError> {
        self.life.guard(self.inner.consumed_mark()).await
    }

    async fn unchanged_since(
        &self,
        batch_id: Uuid,
        marker: &str,
        now: DateTime<Utc>,
        restart: bool,
    ) -> Result<Option<DateTime<Utc>>, StateError> {
        self.life
            .guard(self.inner.unchanged_since(batch_id, marker, now, restart))
            .await
    }
}

#[async_trait]
impl Effects for ObservedState {
    async fn mark_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError> {
        let marked = self
            .life
            .guard(self.inner.mark_effect_done(batch_id, effect))
            .await;
        let subject = self.ledger.batch_label(batch_id);
        let result = match &marked {
            Ok(first) => format!("{effect} first={first}"),
            Err(e) => format!("{effect} error {e}"),
        };
        self.ledger
            .note(&self.actor, "mark_effect_done", &subject, &result);
        marked
    }

    async fn is_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError> {
        self.life
            .guard(self.inner.is_effect_done(batch_id, effect))
            .await
    }

    async fn claim_effect(
        &self,
        batch_id: Uuid,
        effect: Effect,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Result<bool, StateError> {
        let claimed = self
            .inner
            .claim_effect(batch_id, effect, now, stale_after)
            .await;
        let subject = self.ledger.batch_label(batch_id);
        let result = match &claimed {
            Ok(c) => format!("{effect} claimed={c}"),
            Err(e) => format!("{effect} error {e}"),
        };
        self.ledger
            .note(&self.actor, "claim_effect", &subject, &result);
        claimed
    }

    async fn renew_effect_claim(
        &self,
        batch_id: Uuid,
        effect: Effect,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.life
            .guard(self.inner.renew_effect_claim(batch_id, effect, now))
            .await
    }

    async fn release_effect_claim(&self, batch_id: Uuid, effect: Effect) -> Result<(), StateError> {
        let released = self
            .life
            .guard(self.inner.release_effect_claim(batch_id, effect))
            .await;
        let subject = self.ledger.batch_label(batch_id);
        self.ledger
            .note(&self.actor, "release_claim", &subject, &effect.to_string());
        released
    }
}

#[async_trait]
impl Storage for ObservedState {
    async fn charge_stored(
        &self,
        batch: &Batch,
        payer: Payer<'_>,
        bytes: u64,
        caps: StorageCaps,
    ) -> Result<Charge, StateError> {
        self.life
            .guard(self.inner.charge_stored(batch, payer, bytes, caps))
            .await
    }

    async fn charge_renditions(&self, batch: &Batch, bytes: u64) -> Result<(), StateError> {
        self.life
            .guard(self.inner.charge_renditions(batch, bytes))
            .await
    }

    async fn refund_stored(&self, batch_id: Uuid, bytes: u64) -> Result<(), StateError> {
        self.life
            .guard(self.inner.refund_stored(batch_id, bytes))
            .await
    }

    async fn stored_bytes(&self, payer: Payer<'_>) -> Result<StoredBytes, StateError> {
        self.life.guard(self.inner.stored_bytes(payer)).await
    }
}
