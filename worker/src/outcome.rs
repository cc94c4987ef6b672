//! What a job's result becomes: the photo's outcome recorded in the state store, the batch's
//! finalisation handed off when it completed, and the delivery settled with the broker —
//! acked, retried later after [`Ctx::retry_delay`], or dead-lettered once retrying cannot help.

use std::time::Duration;

use tirage_core::codes::FailureCode;
use tirage_core::keys;
use tirage_core::model::{Batch, Rendition};
use tirage_core::{PhotoOutcome, ResizeJob};
use tirage_ports::completion::hand_off;
use tirage_ports::{DeliveryHandle, RecordResult};
use tirage_runtime::telemetry::propagation;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::context::Ctx;
use crate::failure::Failure;
use crate::job::Attempted;
use crate::metrics::JobOutcome;

/// How a delivery is settled with the broker. Decided first, carried out last, so that a
/// job interrupted by shutdown can still be put back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Settle {
    Ack,
    Requeue,
    /// Back after `delay`, having spent `spent` of its retry budget.
    RetryLater {
        delay: Duration,
        spent: Duration,
    },
    DeadLetter(String),
}

/// How a job ended: its settlement, and the outcome the metrics count it under.
pub(crate) type Verdict = (Settle, JobOutcome);

/// Where a job stands in its retries: the attempt it is at (the backoff's exponent) and how
/// much of its budget ([`crate::settings::WorkerSettings::retry_for_ms`]) it has spent.
///
/// The budget is time, not a count, so that a slow failure (a timeout) gets as long to
/// clear as a fast one; but only the job's own time: its failed attempts and the backoffs
/// after them. The time a retry then waits in the queue behind other jobs is not the job's
/// (a batch queued behind a half-hour backlog would otherwise fail photos that merely
/// waited: found by the simulator, `tirage-sim` seeds 26459 and 28233), nor is a wait for
/// others (an outage, a copy's wait for the run holding its photo, a claim held elsewhere).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tries {
    pub attempt: u32,
    /// Spent before this attempt (from the delivery).
    pub spent: Duration,
    /// When this attempt began (tokio's clock: virtual in the simulator).
    pub started: tokio::time::Instant,
}

impl Tries {
    /// Spent so far, this attempt included.
    pub fn spent_now(&self) -> Duration {
        self.spent.saturating_add(self.started.elapsed())
    }

    /// Another attempt after `delay`, for a failure of the job's own: this attempt and the
    /// backoff spend the budget.
    pub fn retry(&self, delay: Duration) -> Settle {
        Settle::RetryLater {
            delay,
            spent: self.spent_now().saturating_add(delay),
        }
    }

    /// Another attempt after `delay`, waiting on others: the budget stays as it was.
    pub fn wait(&self, delay: Duration) -> Settle {
        Settle::RetryLater {
            delay,
            spent: self.spent,
        }
    }

    /// Whether the job has spent its whole budget.
    fn budget_spent(&self, ctx: &Ctx) -> bool {
        self.spent_now() >= Duration::from_millis(ctx.settings.retry_for_ms)
    }
}

fn retry(ctx: &Ctx, tries: Tries) -> Verdict {
    (
        tries.retry(ctx.retry_delay(tries.attempt)),
        JobOutcome::Retried,
    )
}

/// Another attempt later for a transient failure: always while a dependency is down (the
/// outage is not the job's fault, and intake pauses meanwhile, see [`crate::gate`]),
/// otherwise while the job's retry budget lasts.
async fn retry_within_budget(ctx: &Ctx, tries: Tries, reason: &str) -> Option<Verdict> {
    let delay = ctx.retry_delay(tries.attempt);
    if ctx.gate.outage().await {
        warn!(
            reason,
            delay_ms = delay.as_millis() as u64,
            "dependency down; retrying later, outside the retry budget"
        );
        return Some((tries.wait(delay), JobOutcome::Retried));
    }
    if tries.budget_spent(ctx) {
        return None;
    }
    warn!(
        reason,
        delay_ms = delay.as_millis() as u64,
        "transient failure; retrying later"
    );
    Some((tries.retry(delay), JobOutcome::Retried))
}

fn dead_letter(code: FailureCode) -> Verdict {
    (
        Settle::DeadLetter(code.as_str().into()),
        JobOutcome::DeadLettered,
    )
}

/// Carries out a settlement.
pub(crate) async fn settle_delivery(handle: Box<dyn DeliveryHandle>, settle: &Settle) {
    let result = match settle {
        Settle::Ack => handle.ack().await,
        Settle::Requeue => handle.requeue().await,
        Settle::RetryLater { delay, spent } => handle.retry_later(*delay, *spent).await,
        Settle::DeadLetter(reason) => handle.dead_letter(reason).await,
    };
    if let Err(e) = result {
        // The broker is gone with our channel: it will deliver the message again, and the
        // job is idempotent, so nothing is lost.
        warn!(error = %e, "could not settle the delivery; the broker will redeliver it");
    }
}

/// What a delivery of the effects lane did: settled (its outcome label), or a callback to
/// be tried again after a delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum EffectRun {
    Settled(JobOutcome),
    /// Another attempt after this long, for a failure of the effect's own (a callback the
    /// receiver did not take): the retry budget is spent.
    Retry(Duration),
    /// Back after this long, waiting on another handler: the budget stays.
    Wait(Duration),
}

/// The verdict on a finalisation or a callback attempt.
pub(crate) async fn effect_verdict(
    ctx: &Ctx,
    tries: Tries,
    result: Result<EffectRun, Failure>,
) -> Verdict {
    match result {
        Ok(EffectRun::Settled(label)) => (Settle::Ack, label),
        Ok(EffectRun::Retry(delay)) => (tries.retry(delay), JobOutcome::Retried),
        Ok(EffectRun::Wait(delay)) => (tries.wait(delay), JobOutcome::Retried),
        Err(Failure::Gone) => (Settle::Ack, JobOutcome::Dropped),
        Err(Failure::Transient(msg)) => {
            retry_within_budget(ctx, tries, &msg)
                .await
                .unwrap_or_else(|| {
                    error!(reason = %msg, "an effect outlasted its retry budget");
                    dead_letter(FailureCode::RetriesExhausted)
                })
        }
        Err(Failure::Permanent(code, msg)) => {
            error!(%code, reason = %msg, "an effect failed");
            dead_letter(code)
        }
    }
}

/// The verdict on a resize job, after recording what it produced: its renditions, or the
/// failure that is final for the photo.
pub(crate) async fn resize_verdict(
    ctx: &Ctx,
    job: &ResizeJob,
    tries: Tries,
    result: Result<Attempted, Failure>,
) -> Verdict {
    let recorded = match result {
        Ok(Attempted::Rendered(outcome)) => record(ctx, job, outcome).await,
        // A copy of a job being run: back in the delay queue, outside the retry budget
        // (it must never fail the photo its original is settling), at most one hold term
        // away, to find the photo settled, or its run dead and the photo free.
        Ok(Attempted::Held) => {
            let delay = ctx.retry_delay(tries.attempt).min(ctx.settings.run_hold());
            debug!(
                delay_ms = delay.as_millis() as u64,
                "another run holds this photo"
            );
            return (tries.wait(delay), JobOutcome::Held);
        }
        Ok(Attempted::Answered(answer)) => {
            let label = match answer {
                RecordResult::UnknownPhoto { .. } => JobOutcome::UnknownPhoto,
                RecordResult::AlreadyRecorded { .. } | RecordResult::Recorded { .. } => {
                    JobOutcome::Duplicate
                }
            };
            Ok((answer, label))
        }
        Err(Failure::Permanent(code, msg)) => {
            info!(%code, reason = %msg, "photo failed permanently");
            record(ctx, job, PhotoOutcome::Failed { code }).await
        }
        Err(Failure::Transient(msg)) => {
            if let Some(verdict) = retry_within_budget(ctx, tries, &msg).await {
                return verdict;
            }
            error!(reason = %msg, "transient failures outlasted the retry budget");
            return exhausted(ctx, job, tries).await;
        }
        Err(Failure::Gone) => Err(Failure::Gone),
    };
    after_record(ctx, tries, recorded).await
}

/// The job outlasted its retry budget: the photo fails with `retries_exhausted`, and the message
/// goes to the dead-letter queue for a human to look at.
async fn exhausted(ctx: &Ctx, job: &ResizeJob, tries: Tries) -> Verdict {
    let code = FailureCode::RetriesExhausted;
    let recorded = record(ctx, job, PhotoOutcome::Failed { code }).await;
    match after_record(ctx, tries, recorded).await {
        (Settle::Ack, _) => dead_letter(code),
        other => other,
    }
}

/// Records the photo's outcome; the label says what this attempt did (`done` or `failed`,
/// whatever the store then answers).
async fn record(
    ctx: &Ctx,
    job: &ResizeJob,
    outcome: PhotoOutcome,
) -> Result<(RecordResult, JobOutcome), Failure> {
    let label = match &outcome {
        PhotoOutcome::Done { .. } => JobOutcome::Done,
        PhotoOutcome::Failed { code } => {
            ctx.metrics
                .failures
                .with_label_values(&[code.as_str()])
                .inc();
            JobOutcome::Failed
        }
    };
    let state = &ctx.ports.state;
    let recorded = ctx
        .io(
            "record outcome",
            state.record_outcome(job.batch_id, job.photo_id, &outcome),
        )
        .instrument(info_span!("record outcome", outcome = label.as_str()))
        .await;
    // Renditions written for a batch that is gone or a photo it never registered would be
    // orphans: remove them, and only them.
    if let Err(Failure::Gone) | Ok(RecordResult::UnknownPhoto { .. }) = &recorded {
        remove_own_renditions(ctx, job).await;
    }
    if let (Ok(RecordResult::Recorded { batch, .. }), PhotoOutcome::Done { renditions, .. }) =
        (&recorded, &outcome)
    {
        charge_renditions(ctx, batch, renditions).await;
    }
    Ok((recorded?, label))
}

/// Charges the renditions this recording kept to the batch's payer (`tirage_ports::Storage`),
/// once: only the recording that moved the photo charges. A charge that fails is logged and
/// left: the payer keeps those bytes uncounted rather than the photo being retried.
async fn charge_renditions(ctx: &Ctx, batch: &Batch, renditions: &[Rendition]) {
    let bytes = renditions.iter().map(|r| r.bytes).sum();
    let state = &ctx.ports.state;
    if let Err(f) = ctx
        .io("charge renditions", state.charge_renditions(batch, bytes))
        .await
    {
        warn!(batch_id = %batch.id, bytes, reason = ?f, "could not charge the renditions to the batch's payer");
    }
}

/// Settles a job once its outcome is recorded (or known recorded before): hands the batch's
/// finalisation off when this recording completed it (or, on a duplicate, when its
/// completion may not have been handed off), then acks.
async fn after_record(
    ctx: &Ctx,
    tries: Tries,
    recorded: Result<(RecordResult, JobOutcome), Failure>,
) -> Verdict {
    let (batch, label, completed_now) = match recorded {
        Ok((
            RecordResult::Recorded {
                batch,
                completed_now,
            },
            label,
        )) => (batch, label, completed_now),
        Ok((RecordResult::AlreadyRecorded { batch }, _)) => (batch, JobOutcome::Duplicate, false),
        Ok((RecordResult::UnknownPhoto { batch }, _)) => {
            warn!(batch_id = %batch.id, "the batch never registered this photo; job dropped");
            return (Settle::Ack, JobOutcome::UnknownPhoto);
        }
        Err(failure) => return unrecorded(ctx, tries, failure).await,
    };
    let (state, queue) = (&*ctx.ports.state, &*ctx.ports.queue);
    // The finalisation continues the trace of the photo that completed the batch.
    let trace = propagation::current();
    match ctx
        .io(
            "hand off",
            hand_off(state, queue, &batch, completed_now, &trace),
        )
        .await
    {
        Ok(true) => info!(
            total = batch.total,
            done = batch.done,
            failed = batch.failed,
            "batch completed"
        ),
        Ok(false) => {}
        Err(f) => {
            warn!(reason = ?f, "could not hand off the batch finalisation; retrying later");
            return retry(ctx, tries);
        }
    }
    (Settle::Ack, label)
}

/// Recording failed. A transient failure keeps the job circulating until the state store is
/// back (the photo must not stay queued forever); anything else is a bug, kept in the
/// dead-letter queue for a human.
async fn unrecorded(ctx: &Ctx, tries: Tries, failure: Failure) -> Verdict {
    match failure {
        Failure::Gone => {
            debug!("batch is gone");
            (Settle::Ack, JobOutcome::Dropped)
        }
        Failure::Transient(msg) => {
            warn!(reason = %msg, "could not record the outcome; retrying later");
            // Closes the gate when the state store is down, so intake pauses.
            ctx.gate.outage().await;
            retry(ctx, tries)
        }
        Failure::Permanent(code, msg) => {
            error!(%code, reason = %msg, "could not record the outcome");
            dead_letter(code)
        }
    }
}

/// Removes the renditions this job wrote — and never anything else of the batch's: a job
/// whose batch is gone, or whose photo the batch never registered, must leave no orphans, but
/// must not touch what the batch's real photos stored (best effort; objects also expire with
/// the bucket's lifecycle).
async fn remove_own_renditions(ctx: &Ctx, job: &ResizeJob) {
    for &size in &job.options.sizes {
        let key = keys::rendition_key(job.batch_id, job.photo_id, size, job.options.format);
        let deleted = ctx.ports.objects.delete(&key);
        if let Err(e) = ctx.io("delete rendition", deleted).await {
            warn!(reason = ?e, key, "could not remove a rendition of a dropped job");
        }
    }
}
