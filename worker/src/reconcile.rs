//! The reconciler: repairs what no single job can. Every worker runs the loop; a lease in
//! the state store lets one of them work at a time (the others only renew their claim).
//! Each pass walks the batch index:
//! - an expired batch: its objects are removed (originals, renditions, uploads never
//!   completed), then it leaves the index;
//! - a batch with queued photos and no progress for `stall_after_ms`: the jobs of its
//!   queued photos are published again (a publish lost between Redis and the broker, a queue
//!   the broker lost, a Redis write lost). A photo the batch counts whose record was lost
//!   gets a queued record back first (named by its id), so it is resized too. Jobs are
//!   idempotent, so a job that was only slow costs a duplicate delivery, never a double count;
//! - a completed batch whose event or callback stayed undone that long: its finalisation
//!   is published again as a redrive, which runs effects even when claimed (the claimer
//!   died).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tirage_core::codes::Effect;
use tirage_core::keys;
use tirage_core::{Batch, BatchState, PhotoState, ResizeJob};
use tirage_ports::{IndexedBatch, WorkItem};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::context::Ctx;
use crate::failure::Failure;

const LEASE: &str = "reconciler";
/// Batches read from the index at a time, and photos per page of a stalled batch.
const PAGE: usize = 200;

/// Runs a pass every `reconcile_every_ms` until `stop`, while this worker holds the lease.
pub(crate) async fn run(ctx: Arc<Ctx>, stop: CancellationToken) {
    let holder = Uuid::new_v4().to_string();
    let every = Duration::from_millis(ctx.settings.reconcile_every_ms);
    // Held across a missed renewal or two, so a slow pass does not hand the lease over.
    let ttl = every.saturating_mul(3);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        // While a dependency is down nothing progresses anywhere: a stall then is the
        // outage, not a lost job, and republishing would only pile up duplicates.
        if ctx.gate.is_closed() || ctx.gate.outage().await {
            continue;
        }
        let lease = ctx.ports.state.take_lease(LEASE, &holder, ttl);
        match ctx.io("take lease", lease).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                warn!(reason = ?e, "reconciler: cannot take the lease");
                continue;
            }
        }
        if let Err(e) = pass(&ctx, &stop).await {
            warn!(reason = ?e, "reconciler pass stopped early; the next one goes on");
        }
    }
}

/// One pass now, under the lease, for a scheduled job (`tirage-worker reconcile`) where
/// workers scale to zero and no worker loop is left to run passes. `Ok(false)` when another
/// holder has the lease: a worker's loop is running, and does the work. The lease is then
/// held for three `reconcile_every_ms`, as a worker's loop holds it.
pub(crate) async fn once(ctx: &Ctx) -> Result<bool, Failure> {
    if ctx.gate.outage().await {
        return Err(Failure::Transient(
            "a dependency does not answer; nothing can be repaired now".into(),
        ));
    }
    let holder = Uuid::new_v4().to_string();
    let ttl = Duration::from_millis(ctx.settings.reconcile_every_ms).saturating_mul(3);
    let lease = ctx.ports.state.take_lease(LEASE, &holder, ttl);
    if !ctx.io("take lease", lease).await? {
        info!("reconciler: another holder has the lease; nothing to do");
        return Ok(false);
    }
    pass(ctx, &CancellationToken::new()).await?;
    Ok(true)
}

/// One walk over the batch index.
pub(crate) async fn pass(ctx: &Ctx, stop: &CancellationToken) -> Result<(), Failure> {
    let mut offset = 0;
    loop {
        let state = &ctx.ports.state;
        let page = ctx
            .io("list batches", state.indexed_batches(offset, PAGE))
            .await?;
        let now = Utc::now();
        let mut forgotten = 0;
        for indexed in &page {
            if stop.is_cancelled() {
                return Ok(());
            }
            if indexed.expires_at <= now {
                sweep_expired(ctx, indexed).await?;
                forgotten += 1;
            } else {
                check(ctx, indexed.id, now).await?;
            }
        }
        if page.len() < PAGE {
            return Ok(());
        }
        offset += page.len() - forgotten;
    }
}

/// Removes an expired batch's objects, then its index entry (in that order: a pass that
/// stops between the two removes the objects again next time).
async fn sweep_expired(ctx: &Ctx, batch: &IndexedBatch) -> Result<(), Failure> {
    let prefix = keys::batch_prefix(batch.id);
    let removed = ctx
        .io("sweep objects", ctx.ports.objects.delete_prefix(&prefix))
        .await?;
    let state = &ctx.ports.state;
    ctx.io("forget batch", state.forget_batch(batch.id)).await?;
    ctx.metrics.reconciled.with_label_values(&["swept"]).inc();
    info!(batch_id = %batch.id, removed, "reconciler: expired batch swept");
    Ok(())
}

/// Repairs a live batch that has shown no progress for `stall_after_ms`.
async fn check(ctx: &Ctx, batch_id: Uuid, now: DateTime<Utc>) -> Result<(), Failure> {
    let state = &ctx.ports.state;
    let Some(batch) = ctx.io("get batch", state.get_batch(batch_id)).await? else {
        return Ok(()); // deleted: swept when it expires
    };
    let marker = match batch.state {
        BatchState::Open | BatchState::Processing if batch.done + batch.failed < batch.total => {
            format!(
                "{:?}:{}:{}",
                batch.state,
                batch.total,
                batch.done + batch.failed
            )
        }
        BatchState::Completed if !effects_done(ctx, &batch).await? => "completed".to_owned(),
        _ => return Ok(()),
    };
    let watch = state.unchanged_since(batch_id, &marker, now, false);
    let Some(since) = ctx.io("watch batch", watch).await? else {
        return Ok(());
    };
    let stall = Duration::from_millis(ctx.settings.stall_after_ms);
    if (now - since).to_std().unwrap_or(Duration::ZERO) < stall {
        return Ok(());
    }
    if batch.state == BatchState::Completed {
        redrive_finalisation(ctx, batch_id).await?;
    } else {
        let restore = state.restore_lost_photos(batch_id);
        let restored = ctx.io("restore lost photos", restore).await?;
        if !restored.is_empty() {
            warn!(%batch_id, restored = restored.len(), "reconciler: lost photo registrations restored");
        }
        republish_queued(ctx, &batch).await?;
    }
    // The repair starts the wait again: nothing is published twice within one stall.
    let restart = state.unchanged_since(batch_id, &marker, now, true);
    ctx.io("restart watch", restart).await?;
    Ok(())
}

async fn effects_done(ctx: &Ctx, batch: &Batch) -> Result<bool, Failure> {
    let state = &ctx.ports.state;
    let event = state.is_effect_done(batch.id, Effect::Event);
    if !ctx.io("effect done?", event).await? {
        return Ok(false);
    }
    if batch.callback_url.is_none() {
        return Ok(true);
    }
    let callback = state.is_effect_done(batch.id, Effect::Callback);
    ctx.io("effect done?", callback).await
}

async fn redrive_finalisation(ctx: &Ctx, batch_id: Uuid) -> Result<(), Failure> {
    let item = WorkItem::FinalizeBatch {
        batch_id,
        redrive: true,
    };
    ctx.io("publish finalisation", ctx.ports.queue.publish(&item))
        .await?;
    ctx.metrics
        .reconciled
        .with_label_values(&["redriven"])
        .inc();
    warn!(%batch_id, "reconciler: a completed batch's effects stayed undone; finalisation redriven");
    Ok(())
}

/// Publishes the job of every queued photo of `batch` again.
async fn republish_queued(ctx: &Ctx, batch: &Batch) -> Result<(), Failure> {
    let state = &ctx.ports.state;
    let mut cursor: Option<String> = None;
    let mut republished = 0u64;
    loop {
        let list = state.list_photos(batch.id, cursor.as_deref(), PAGE);
        let page = ctx.io("list photos", list).await?;
        for photo in page.photos.iter().filter(|p| p.state == PhotoState::Queued) {
            let job = WorkItem::Resize(ResizeJob::new(batch, photo.id, None));
            ctx.io("publish job", ctx.ports.queue.publish(&job)).await?;
            republished += 1;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ctx.metrics
        .reconciled
        .with_label_values(&["republished"])
        .inc_by(republished);
    warn!(batch_id = %batch.id, republished, "reconciler: a stalled batch's queued jobs published again");
    Ok(())
}
