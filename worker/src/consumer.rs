//! The consume loop of one lane: take deliveries from the queue, run each in its own task,
//! consume again with backoff whenever the stream ends or fails, and drain the tasks on
//! shutdown. A worker runs one loop per lane, each with its own prefetch, so resizes and
//! effects (finalisations, callbacks) never wait for each other's slots.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tirage_core::backoff::Backoff;
use tirage_ports::{Delivery, JobStream, Lane, WorkItem};
use tirage_runtime::telemetry::propagation;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

use crate::context::Ctx;
use crate::metrics::{JobKind, JobOutcome};
use crate::outcome::{self, EffectRun, Settle, Tries};
use crate::{callback, finalize, job};

/// Consumes `lane` until `stop` is cancelled, then drains: in-flight jobs get the grace
/// period, the rest go back to the queue.
pub(crate) async fn consume(ctx: Arc<Ctx>, lane: Lane, stop: CancellationToken) {
    let tracker = TaskTracker::new();
    let abandon = CancellationToken::new();
    let prefetch = ctx.settings.prefetch(lane);
    let reconnect = Backoff::new(
        Duration::from_millis(ctx.settings.reconnect_base_ms),
        Duration::from_millis(ctx.settings.reconnect_cap_ms),
    );
    let mut failures = 0u32;
    let mut current: Option<Box<dyn JobStream>> = None;
    loop {
        let Some(stream) = current.as_mut() else {
            let consumed = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                r = tokio::time::timeout(ctx.settings.io_timeout(), ctx.ports.queue.consume(lane, prefetch)) => r,
            };
            match consumed {
                Ok(Ok(stream)) => {
                    info!(lane = lane.as_str(), prefetch, "consuming");
                    current = Some(stream);
                    continue;
                }
                Ok(Err(e)) => warn!(error = %e, "cannot consume; retrying"),
                Err(_) => warn!("consume timed out; retrying"),
            }
            failures = failures.saturating_add(1);
            if !pause(
                &stop,
                reconnect.delay_with(failures, ctx.seams.entropy.fraction()),
            )
            .await
            {
                break;
            }
            continue;
        };
        // A dependency is down: take nothing new until it answers (the deliveries the
        // broker already pushed wait in the stream, unstarted).
        if ctx.gate.is_closed()
            && !ctx
                .gate
                .wait_until_open(&stop, |n| {
                    reconnect.delay_with(n, ctx.seams.entropy.fraction())
                })
                .await
        {
            break;
        }
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            next = stream.next() => next,
        };
        match next {
            Some(Ok(delivery)) => {
                failures = 0;
                tracker.spawn(handle(ctx.clone(), lane, delivery, abandon.clone()));
                continue;
            }
            Some(Err(e)) => warn!(error = %e, "the job stream failed; consuming again"),
            None => warn!("the job stream ended; consuming again"),
        }
        current = None;
        ctx.metrics.consumer_restarts.inc();
        failures = failures.saturating_add(1);
        if !pause(
            &stop,
            reconnect.delay_with(failures, ctx.seams.entropy.fraction()),
        )
        .await
        {
            break;
        }
    }
    // No more deliveries are taken from here on. The stream itself stays open while
    // in-flight jobs drain, because closing it hands their messages back to the broker
    // (and the jobs' own settlements would then fail).
    tracker.close();
    let in_flight = tracker.len();
    info!(
        lane = lane.as_str(),
        in_flight, "stopping: draining in-flight jobs"
    );
    if tokio::time::timeout(ctx.settings.shutdown_grace(), tracker.wait())
        .await
        .is_err()
    {
        warn!(
            left = tracker.len(),
            "grace period over; requeueing the jobs still running"
        );
        abandon.cancel();
        tracker.wait().await;
    }
    drop(current);
    info!(lane = lane.as_str(), "stopped");
}

/// Waits `delay` unless stopped first; false when stopped.
async fn pause(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        biased;
        () = stop.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

/// Handles one delivery of `lane` and settles it. `cancel` fires when the shutdown grace
/// period ran out: the job is then abandoned and its message requeued for another worker.
async fn handle(ctx: Arc<Ctx>, lane: Lane, delivery: Delivery, cancel: CancellationToken) {
    let Delivery {
        item,
        attempt,
        retry_spent,
        redelivered,
        trace,
        handle,
    } = delivery;
    let tries = Tries {
        attempt,
        spent: retry_spent,
        started: tokio::time::Instant::now(),
    };
    // A consumer span in the trace its publisher started (when tracing is on).
    let (kind, span) = match &item {
        WorkItem::Resize(job) => (
            JobKind::Resize,
            info_span!(
                "job",
                otel.name = "process resize",
                otel.kind = "consumer",
                kind = "resize",
                request_id = job.request_id.as_deref().unwrap_or(""),
                batch_id = %job.batch_id,
                photo_id = %job.photo_id,
                attempt,
                redelivered,
                // Since the job was first published: its wait in the queue (and its
                // earlier attempts').
                queued_ms = (ctx.now() - job.published_at).num_milliseconds().max(0),
            ),
        ),
        WorkItem::FinalizeBatch { batch_id, .. } | WorkItem::Callback { batch_id, .. } => {
            let kind = if matches!(item, WorkItem::Callback { .. }) {
                JobKind::Callback
            } else {
                JobKind::Finalize
            };
            let span = info_span!(
                "job",
                otel.name = format!("process {}", kind.as_str()),
                otel.kind = "consumer",
                kind = kind.as_str(),
                batch_id = %batch_id,
                attempt,
                redelivered
            );
            (kind, span)
        }
    };
    propagation::continue_trace(&span, &trace);
    async move {
        let started = Instant::now();
        ctx.metrics.in_flight.inc();
        // Names this delivery's run of a resize, should it hold the photo (`job::run`).
        let run = ctx.seams.entropy.uuid();
        let resize = match &item {
            WorkItem::Resize(job) => Some(job.clone()),
            _ => None,
        };
        let work = async {
            match item {
                WorkItem::Resize(job) => {
                    let result = job::run(&ctx, &job, attempt, redelivered, run).await;
                    outcome::resize_verdict(&ctx, &job, tries, result).await
                }
                // Effects published to the resize queue by a version before the lanes: moved
                // to their own lane rather than run in a resize slot.
                other if other.lane() != lane => {
                    let publish = ctx.ports.queue.publish(&other, &trace);
                    let moved = ctx.io("move to its lane", publish);
                    let result = moved.await.map(|()| EffectRun::Settled(JobOutcome::Moved));
                    outcome::effect_verdict(&ctx, tries, result).await
                }
                WorkItem::FinalizeBatch { batch_id, .. } => {
                    let result = finalize::run(&ctx, batch_id, tries).await;
                    outcome::effect_verdict(&ctx, tries, result).await
                }
                WorkItem::Callback {
                    batch_id,
                    completed_at,
                } => {
                    let result = callback::run(&ctx, batch_id, completed_at, tries).await;
                    outcome::effect_verdict(&ctx, tries, result).await
                }
            }
        };
        let (settle, label) = tokio::select! {
            biased;
            r = work => r,
            () = cancel.cancelled() => {
                // Abandoned, not crashed: the copy the broker hands out next must not wait
                // for this run's hold, nor count it against the photo.
                if let Some(job) = &resize {
                    job::end_run(&ctx, job, run).await;
                }
                (Settle::Requeue, JobOutcome::Requeued)
            }
        };
        outcome::settle_delivery(handle, &settle).await;
        ctx.metrics.in_flight.dec();
        ctx.metrics.job(kind, label);
        ctx.metrics
            .job_duration
            .with_label_values(&[kind.as_str()])
            .observe(started.elapsed().as_secs_f64());
        info!(outcome = label.as_str(), settle = ?settle, elapsed_ms = started.elapsed().as_millis() as u64, "job settled");
    }
    .instrument(span)
    .await
}
