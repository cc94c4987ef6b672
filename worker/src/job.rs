//! One delivery, start to settlement. Delivery is at-least-once; everything here is written
//! so that running a job twice has the effect of running it once:
//! renditions go to deterministic keys, the outcome is recorded only if the photo has none,
//! and the batch's side effects are claimed through the state store.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use futures::future::try_join_all;
use tirage_engine::EngineError;
use tirage_shared::keys;
use tirage_shared::ports::{
    Delivery, DeliveryHandle, ObjectStoreError, QueueError, RecordResult, StateError, WorkItem,
};
use tirage_shared::{BatchState, PhotoOutcome, PhotoState, Rendition, ResizeJob};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};
use uuid::Uuid;

use crate::Ctx;
use crate::finalize;
use crate::settings::backoff;

/// How a delivery is settled with the broker. Decided first, carried out last, so that a
/// job interrupted by shutdown can still be put back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Settle {
    Ack,
    Requeue,
    RetryLater(Duration),
    DeadLetter(String),
}

/// Why a step of a job failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth trying again later: a dependency did not answer.
    Transient(String),
    /// The same input fails the same way: record the photo failed with this code.
    Permanent(&'static str, String),
    /// The batch no longer exists (deleted or expired): nothing to do.
    Gone,
}

impl From<ObjectStoreError> for Failure {
    fn from(e: ObjectStoreError) -> Self {
        if e.is_transient() {
            Failure::Transient(e.to_string())
        } else {
            Failure::Permanent("storage_error", e.to_string())
        }
    }
}

impl From<StateError> for Failure {
    fn from(e: StateError) -> Self {
        match e {
            StateError::NotFound => Failure::Gone,
            e if e.is_transient() => Failure::Transient(e.to_string()),
            e => Failure::Permanent("internal_error", e.to_string()),
        }
    }
}

impl From<QueueError> for Failure {
    fn from(e: QueueError) -> Self {
        // A refused publish is the broker protecting itself (a full queue, an alarm): it
        // may well accept the same message later.
        Failure::Transient(e.to_string())
    }
}

/// Runs one dependency call under the configured timeout; a timeout is transient.
pub(crate) async fn io<T, E>(
    ctx: &Ctx,
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, Failure>
where
    Failure: From<E>,
{
    match tokio::time::timeout(ctx.settings.io_timeout(), fut).await {
        Ok(r) => r.map_err(Failure::from),
        Err(_) => Err(Failure::Transient(format!("{what} timed out"))),
    }
}

/// Handles one delivery and settles it. `cancel` fires when the shutdown grace period ran
/// out: the job is then abandoned and its message requeued for another worker.
pub(crate) async fn run(ctx: Arc<Ctx>, delivery: Delivery, cancel: CancellationToken) {
    let Delivery {
        item,
        attempt,
        redelivered,
        handle,
    } = delivery;
    let (kind, span) = match &item {
        WorkItem::Resize(job) => (
            "resize",
            info_span!(
                "job",
                kind = "resize",
                request_id = job.request_id.as_deref().unwrap_or(""),
                batch_id = %job.batch_id,
                photo_id = %job.photo_id,
                attempt,
                redelivered,
            ),
        ),
        WorkItem::FinalizeBatch { batch_id } => (
            "finalize",
            info_span!("job", kind = "finalize", batch_id = %batch_id, attempt, redelivered),
        ),
    };
    async move {
        let started = Instant::now();
        ctx.metrics.in_flight.inc();
        let work = async {
            match item {
                WorkItem::Resize(job) => resize(&ctx, job, attempt, redelivered).await,
                WorkItem::FinalizeBatch { batch_id } => {
                    finalize::run(&ctx, batch_id, attempt, redelivered).await
                }
            }
        };
        let (settle, outcome) = tokio::select! {
            biased;
            r = work => r,
            () = cancel.cancelled() => (Settle::Requeue, "requeued"),
        };
        settle_delivery(handle, &settle).await;
        ctx.metrics.in_flight.dec();
        ctx.metrics.job(kind, outcome);
        ctx.metrics
            .job_duration
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
        info!(outcome, settle = ?settle, elapsed_ms = started.elapsed().as_millis() as u64, "job settled");
    }
    .instrument(span)
    .await
}

async fn settle_delivery(handle: Box<dyn DeliveryHandle>, settle: &Settle) {
    let result = match settle {
        Settle::Ack => handle.ack().await,
        Settle::Requeue => handle.requeue().await,
        Settle::RetryLater(delay) => handle.retry_later(*delay).await,
        Settle::DeadLetter(reason) => handle.dead_letter(reason).await,
    };
    if let Err(e) = result {
        // The broker is gone with our channel: it will deliver the message again, and the
        // job is idempotent, so nothing is lost.
        warn!(error = %e, "could not settle the delivery; the broker will redeliver it");
    }
}

/// What a resize attempt ended with, before settlement.
enum Step {
    /// The state store answered; the label says what this attempt did (`done`, `failed`,
    /// or `duplicate` when the photo already had an outcome).
    Recorded(RecordResult, &'static str),
    Gone,
}

async fn resize(
    ctx: &Ctx,
    job: ResizeJob,
    attempt: u32,
    redelivered: bool,
) -> (Settle, &'static str) {
    if attempt == 1 && !redelivered {
        let lag = (Utc::now() - job.published_at)
            .to_std()
            .unwrap_or(Duration::ZERO);
        ctx.metrics.publish_to_start.observe(lag.as_secs_f64());
    }
    let step = match try_resize(ctx, &job).await {
        Ok(step) => Ok(step),
        Err(Failure::Gone) => Ok(Step::Gone),
        Err(Failure::Permanent(code, msg)) => {
            info!(code, reason = %msg, "photo failed permanently");
            record(ctx, &job, PhotoOutcome::Failed { code: code.into() }).await
        }
        Err(Failure::Transient(msg)) if attempt < ctx.settings.max_attempts => {
            let delay = backoff(
                attempt,
                Duration::from_millis(ctx.settings.retry_base_ms),
                Duration::from_millis(ctx.settings.retry_cap_ms),
            );
            warn!(reason = %msg, delay_ms = delay.as_millis() as u64, "transient failure; retrying later");
            return (Settle::RetryLater(delay), "retried");
        }
        Err(Failure::Transient(msg)) => {
            error!(reason = %msg, "transient failures exhausted the attempts");
            match record(
                ctx,
                &job,
                PhotoOutcome::Failed {
                    code: "retries_exhausted".into(),
                },
            )
            .await
            {
                Ok(step) => {
                    return match after_record(ctx, step).await {
                        (Settle::Ack, _) => (
                            Settle::DeadLetter("retries_exhausted".into()),
                            "dead_lettered",
                        ),
                        other => other,
                    };
                }
                Err(f) => Err(f),
            }
        }
    };
    match step {
        Ok(step) => after_record(ctx, step).await,
        Err(Failure::Gone) => {
            debug!("batch is gone");
            (Settle::Ack, "dropped")
        }
        // Recording itself failed. A transient failure keeps the job circulating until the
        // state store is back (the photo must not stay queued forever); anything else is a
        // bug, kept in the dead-letter queue for a human.
        Err(Failure::Transient(msg)) => {
            let delay = backoff(
                attempt,
                Duration::from_millis(ctx.settings.retry_base_ms),
                Duration::from_millis(ctx.settings.retry_cap_ms),
            );
            warn!(reason = %msg, "could not record the outcome; retrying later");
            (Settle::RetryLater(delay), "retried")
        }
        Err(Failure::Permanent(code, msg)) => {
            error!(code, reason = %msg, "could not record the outcome");
            (Settle::DeadLetter(code.into()), "dead_lettered")
        }
    }
}

/// Settles a recorded job: publishes the batch's finalisation when this recording (or, on a
/// redelivery, an earlier one) completed it, then acks.
async fn after_record(ctx: &Ctx, step: Step) -> (Settle, &'static str) {
    let (batch, label, completed) = match step {
        Step::Gone => {
            debug!("batch is gone");
            return (Settle::Ack, "dropped");
        }
        Step::Recorded(
            RecordResult::Recorded {
                batch,
                completed_now,
            },
            label,
        ) => (batch, label, completed_now),
        // A duplicate: the photo was recorded before, perhaps by a worker that died before
        // publishing the finalisation. Publishing it again is harmless (it is idempotent).
        Step::Recorded(RecordResult::AlreadyRecorded { batch }, _) => {
            let completed = batch.state == BatchState::Completed;
            (batch, "duplicate", completed)
        }
    };
    if completed {
        let item = WorkItem::FinalizeBatch { batch_id: batch.id };
        if let Err(f) = io(ctx, "publish finalize", ctx.ports.queue.publish(&item)).await {
            warn!(reason = ?f, "could not publish the batch finalisation; retrying later");
            return (
                Settle::RetryLater(Duration::from_millis(ctx.settings.retry_base_ms)),
                "retried",
            );
        }
        info!(
            total = batch.total,
            done = batch.done,
            failed = batch.failed,
            "batch completed"
        );
    }
    (Settle::Ack, label)
}

async fn record(ctx: &Ctx, job: &ResizeJob, outcome: PhotoOutcome) -> Result<Step, Failure> {
    if let PhotoOutcome::Failed { code } = &outcome {
        ctx.metrics.failures.with_label_values(&[code]).inc();
    }
    let label = match outcome {
        PhotoOutcome::Done { .. } => "done",
        PhotoOutcome::Failed { .. } => "failed",
    };
    match io(
        ctx,
        "record outcome",
        ctx.ports
            .state
            .record_outcome(job.batch_id, job.photo_id, &outcome),
    )
    .await
    {
        Ok(r) => Ok(Step::Recorded(r, label)),
        Err(Failure::Gone) => {
            forget_batch_objects(ctx, job.batch_id).await;
            Ok(Step::Gone)
        }
        Err(f) => Err(f),
    }
}

/// The batch was deleted while we worked: renditions we wrote after its objects were
/// removed would be orphans, so remove them again (best effort; they expire with the bucket
/// lifecycle otherwise).
async fn forget_batch_objects(ctx: &Ctx, batch_id: Uuid) {
    let prefix = keys::batch_prefix(batch_id);
    if let Err(e) = io(
        ctx,
        "delete prefix",
        ctx.ports.objects.delete_prefix(&prefix),
    )
    .await
    {
        warn!(reason = ?e, "could not remove the objects of a deleted batch");
    }
}

async fn try_resize(ctx: &Ctx, job: &ResizeJob) -> Result<Step, Failure> {
    let state = &ctx.ports.state;
    let (batch, photo) = tokio::join!(
        io(ctx, "get batch", state.get_batch(job.batch_id)),
        io(
            ctx,
            "get photo",
            state.get_photo(job.batch_id, job.photo_id)
        ),
    );
    let Some(batch) = batch? else {
        return Ok(Step::Gone);
    };
    if let Some(photo) = photo?
        && photo.state != PhotoState::Queued
    {
        // Already recorded: skip the CPU work, but still settle completion.
        return Ok(Step::Recorded(
            RecordResult::AlreadyRecorded { batch },
            "duplicate",
        ));
    }
    // The message names the original; never read outside the batch's own prefix, whoever
    // managed to publish the message.
    if !job
        .source_key
        .starts_with(&keys::batch_prefix(job.batch_id))
    {
        return Err(Failure::Permanent(
            "invalid_job",
            format!("source key {:?} is outside the batch", job.source_key),
        ));
    }
    let get = ctx.ports.objects.get(&job.source_key);
    let source = match tokio::time::timeout(ctx.settings.io_timeout(), get).await {
        Ok(Ok(b)) => b,
        // The API publishes only after the original is stored, so a missing original
        // will not appear later.
        Ok(Err(e @ ObjectStoreError::NotFound(_))) => {
            return Err(Failure::Permanent("source_missing", e.to_string()));
        }
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(Failure::Transient("get original timed out".into())),
    };
    let resized = run_engine(ctx, source, &job.options).await?;
    let format = job.options.format;
    let puts = resized.renditions.iter().map(|r| {
        let key = keys::rendition_key(job.batch_id, job.photo_id, r.size, format);
        let body = Bytes::from(r.data.clone());
        async move {
            io(
                ctx,
                "put rendition",
                ctx.ports.objects.put(&key, body, format.content_type()),
            )
            .await
        }
    });
    try_join_all(puts).await?;
    let outcome = PhotoOutcome::Done {
        width: resized.width,
        height: resized.height,
        renditions: resized
            .renditions
            .iter()
            .map(|r| Rendition {
                size: r.size,
                width: r.width,
                height: r.height,
                bytes: r.data.len() as u64,
            })
            .collect(),
    };
    record(ctx, job, outcome).await
}

/// Runs the engine on the CPU pool: at most `concurrency` resizes at once, off the async
/// runtime. A panic fails this job only.
async fn run_engine(
    ctx: &Ctx,
    source: Bytes,
    options: &tirage_shared::BatchOptions,
) -> Result<tirage_engine::Resized, Failure> {
    let permit = ctx
        .cpu
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| Failure::Transient(format!("cpu pool closed: {e}")))?;
    let resizer = ctx.resizer.clone();
    let options = options.clone();
    let limits = ctx.settings.limits();
    let delay = Duration::from_millis(ctx.settings.job_delay_ms);
    let joined = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        std::panic::catch_unwind(AssertUnwindSafe(|| resizer(&source, &options, &limits)))
    })
    .await;
    match joined {
        Ok(Ok(Ok(resized))) => Ok(resized),
        Ok(Ok(Err(e))) => Err(engine_failure(e)),
        Ok(Err(_panic)) => Err(Failure::Permanent(
            "internal_error",
            "the engine panicked".into(),
        )),
        Err(e) if e.is_panic() => Err(Failure::Permanent(
            "internal_error",
            "the engine task panicked".into(),
        )),
        Err(e) => Err(Failure::Transient(format!("engine task cancelled: {e}"))),
    }
}

fn engine_failure(e: EngineError) -> Failure {
    Failure::Permanent(e.code(), e.to_string())
}
