//! The state store as a node or an API replica sees it: the one shared `MemoryStateStore`,
//! seen through a wrapper that tells the ledger what it answered to whom (each outcome
//! recorded, each run counted) and the engine whose run was just counted. Every call goes
//! through the actor's fault injector (port `state`: an error before or after the store
//! acted, a hang first) and its life (none returns once the actor is killed). The ledger
//! hears what the store did, before a fault loses the answer.

use std::future::Future;
use std::sync::Arc;
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

use crate::engine::note_run_started;
use crate::faults::Injector;
use crate::ledger::Ledger;

mod passthrough;

pub struct ObservedState {
    inner: Arc<dyn StateStore>,
    actor: String,
    ledger: Arc<Ledger>,
    /// The actor's faults on this port (through its life: once it is killed, no call
    /// returns).
    faults: Injector,
}

impl ObservedState {
    pub fn new(
        inner: Arc<dyn StateStore>,
        actor: &str,
        ledger: Arc<Ledger>,
        faults: Injector,
    ) -> ObservedState {
        ObservedState {
            inner,
            actor: actor.to_owned(),
            ledger,
            faults,
        }
    }

    /// One call with its fault: an error before or after it (the store did it, the answer
    /// is lost), or a hang first.
    async fn io<T>(
        &self,
        op: &str,
        call: impl Future<Output = Result<T, StateError>> + Send,
    ) -> Result<T, StateError> {
        self.faults
            .call(op, "", call, StateError::Unavailable, || {})
            .await
    }

    /// Tells the ledger what the store answered to a `record_outcome` (before any fault
    /// loses the answer: the checker counts what the store did).
    fn note_record(
        &self,
        photo_id: Uuid,
        outcome: &PhotoOutcome,
        result: &Result<RecordResult, StateError>,
    ) {
        let what = outcome_name(outcome);
        match result {
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
        self.io("ping", self.inner.ping()).await
    }
}

#[async_trait]
impl Batches for ObservedState {
    async fn create_batch(&self, batch: &Batch, max_open: Cap) -> Result<bool, StateError> {
        self.io("create_batch", self.inner.create_batch(batch, max_open))
            .await
    }

    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError> {
        self.io("get_batch", self.inner.get_batch(batch_id)).await
    }

    async fn add_photos(
        &self,
        batch_id: Uuid,
        photos: &[PhotoRecord],
        limit: u64,
    ) -> Result<Batch, StateError> {
        let added = self
            .io("add_photos", self.inner.add_photos(batch_id, photos, limit))
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
        let closed = self
            .io("close_batch", self.inner.close_batch(batch_id))
            .await;
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
        self.io("get_photo", self.inner.get_photo(batch_id, photo_id))
            .await
    }

    async fn list_photos(
        &self,
        batch_id: Uuid,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PhotoPage, StateError> {
        self.io(
            "list_photos",
            self.inner.list_photos(batch_id, cursor, limit),
        )
        .await
    }

    async fn delete_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        self.io("delete_batch", self.inner.delete_batch(batch_id))
            .await
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
        let recorded = async {
            let result = self.inner.record_outcome(batch_id, photo_id, outcome).await;
            self.note_record(photo_id, outcome, &result);
            result
        };
        self.io("record_outcome", recorded).await
    }

    async fn crashed_runs(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u32, StateError> {
        self.io(
            "crashed_runs",
            self.inner.crashed_runs(batch_id, photo_id, now),
        )
        .await
    }

    async fn start_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<RunStart, StateError> {
        let start = async {
            let started = self.inner.start_run(batch_id, photo_id, hold).await;
            if let Ok(start) = &started {
                let subject = self.ledger.photo_label(photo_id);
                let what = match start {
                    RunStart::Started { crashed } => format!("started, {crashed} crashed before"),
                    RunStart::Held => "held by another run".to_owned(),
                };
                self.ledger.note(&self.actor, "start_run", &subject, &what);
                match start {
                    RunStart::Started { .. } => self.ledger.run_started(&self.actor, photo_id),
                    RunStart::Held => self.ledger.count("held_copies"),
                }
            }
            started
        };
        let started = self.io("start_run", start).await;
        // The engine learns which photo it runs only when the worker was told it may.
        if let Ok(RunStart::Started { .. }) = started {
            note_run_started(batch_id, photo_id);
        }
        started
    }

    async fn renew_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<bool, StateError> {
        self.io("renew_run", self.inner.renew_run(batch_id, photo_id, hold))
            .await
    }

    async fn end_run(&self, batch_id: Uuid, photo_id: Uuid, token: Uuid) -> Result<(), StateError> {
        self.io("end_run", self.inner.end_run(batch_id, photo_id, token))
            .await
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
        self.io("take_lease", self.inner.take_lease(name, holder, ttl))
            .await
    }

    async fn indexed_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError> {
        self.io("indexed_batches", self.inner.indexed_batches(offset, limit))
            .await
    }

    async fn unsettled_batches(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IndexedBatch>, StateError> {
        self.io(
            "unsettled_batches",
            self.inner.unsettled_batches(offset, limit),
        )
        .await
    }

    async fn settle_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        self.io("settle_batch", self.inner.settle_batch(batch_id))
            .await
    }

    async fn forget_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        self.io("forget_batch", self.inner.forget_batch(batch_id))
            .await
    }

    async fn sweep_batch_at(&self, batch_id: Uuid, at: DateTime<Utc>) -> Result<(), StateError> {
        self.io("sweep_batch_at", self.inner.sweep_batch_at(batch_id, at))
            .await
    }

    async fn restore_lost_photos(&self, batch_id: Uuid) -> Result<Vec<Uuid>, StateError> {
        self.io(
            "restore_lost_photos",
            self.inner.restore_lost_photos(batch_id),
        )
        .await
    }

    // Not in the ledger: workers call it when a second of wall time has passed, which
    // virtual time does not decide.
    async fn advance_consumed_mark(
        &self,
        published_at: DateTime<Utc>,
        taken_at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.io(
            "advance_consumed_mark",
            self.inner.advance_consumed_mark(published_at, taken_at),
        )
        .await
    }

    async fn consumed_mark(&self) -> Result<Option<ConsumedMark>, StateError> {
        self.io("consumed_mark", self.inner.consumed_mark()).await
    }

    async fn unchanged_since(
        &self,
        batch_id: Uuid,
        marker: &str,
        now: DateTime<Utc>,
        restart: bool,
    ) -> Result<Option<DateTime<Utc>>, StateError> {
        self.io(
            "unchanged_since",
            self.inner.unchanged_since(batch_id, marker, now, restart),
        )
        .await
    }
}

#[async_trait]
impl Effects for ObservedState {
    async fn mark_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError> {
        // The ledger hears what the store did, before a fault loses the answer.
        let mark = async {
            let marked = self.inner.mark_effect_done(batch_id, effect).await;
            let subject = self.ledger.batch_label(batch_id);
            let result = match &marked {
                Ok(first) => format!("{effect} first={first}"),
                Err(e) => format!("{effect} error {e}"),
            };
            self.ledger
                .note(&self.actor, "mark_effect_done", &subject, &result);
            if marked.is_ok() {
                self.ledger.effect_marked(&self.actor, batch_id, effect);
            }
            marked
        };
        self.io("mark_effect_done", mark).await
    }

    async fn effect_claimed_at(
        &self,
        batch_id: Uuid,
        effect: Effect,
    ) -> Result<Option<DateTime<Utc>>, StateError> {
        self.io(
            "effect_claimed_at",
            self.inner.effect_claimed_at(batch_id, effect),
        )
        .await
    }

    async fn is_effect_done(&self, batch_id: Uuid, effect: Effect) -> Result<bool, StateError> {
        self.io(
            "is_effect_done",
            self.inner.is_effect_done(batch_id, effect),
        )
        .await
    }

    async fn claim_effect(
        &self,
        batch_id: Uuid,
        effect: Effect,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Result<bool, StateError> {
        let claim = self.inner.claim_effect(batch_id, effect, now, stale_after);
        let claimed = self.io("claim_effect", claim).await;
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
        self.io(
            "renew_effect_claim",
            self.inner.renew_effect_claim(batch_id, effect, now),
        )
        .await
    }

    async fn release_effect_claim(&self, batch_id: Uuid, effect: Effect) -> Result<(), StateError> {
        let released = self
            .io(
                "release_effect_claim",
                self.inner.release_effect_claim(batch_id, effect),
            )
            .await;
        let subject = self.ledger.batch_label(batch_id);
        self.ledger
            .note(&self.actor, "release_claim", &subject, &effect.to_string());
        released
    }
}
