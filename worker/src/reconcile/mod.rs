//! The reconciler: repairs what no single job can. Every worker runs the loop; a lease in
//! the state store lets one of them work at a time (the others only renew their claim).
//! Each pass sweeps the expired batches, then checks the unsettled ones (a pass costs what
//! is due or in flight, not every batch kept for two days):
//! - an expired batch: its objects are removed (originals, renditions, uploads never
//!   completed), then it leaves the index;
//! - a batch completed with its effects done, or deleted: it leaves the unsettled list;
//! - a batch with queued photos and no progress for `stall_after_ms`, once the resize queue
//!   has moved past it (workers took jobs published after the batch last changed, or nothing
//!   waits and workers have been idle: see [`Backlog`]; a batch waiting behind a longer
//!   backlog is left alone): the
//!   jobs of its queued photos are published again (a publish lost between Redis and the
//!   broker, a queue the broker lost, a Redis write lost). A photo the batch counts whose
//!   record was lost gets a queued record back first (named by its id), so it is resized
//!   too. Jobs are idempotent, so a job that was only slow costs a duplicate delivery, never
//!   a double count;
//! - a completed batch whose event or callback stayed undone that long, once nothing waits
//!   on the effects lane (a finalisation or a callback retry there may be its own): its
//!   finalisation is published again as a redrive, which takes over the claims of handlers
//!   that died (claims older than `finalize::claim_stale_after`) and leaves live ones alone.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tirage_core::codes::Effect;
use tirage_core::keys;
use tirage_core::{Batch, BatchState, PhotoState, ResizeJob};
use tirage_ports::{IndexedBatch, WorkItem};
use tirage_runtime::telemetry::propagation;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::context::Ctx;
use crate::failure::Failure;
use crate::finalize::claim_stale_after;
use crate::metrics::Repair;
use crate::settings::HOST_CLOCK_SKEW;

mod backlog;

use backlog::Backlog;

const LEASE: &str = "reconciler";
/// Batches read from the index at a time, and photos per page of a stalled batch.
const PAGE: usize = 200;

/// Runs a pass every `reconcile_every_ms` until `stop`, while this worker holds the lease.
pub(crate) async fn run(ctx: Arc<Ctx>, stop: CancellationToken) {
    let every = Duration::from_millis(ctx.settings.reconcile_every_ms);
    let lease = Lease::new(&ctx);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        // While a dependency is down nothing progresses anywhere: a stall then is the
        // outage, not a lost job, and republishing would only pile up duplicates. The
        // probe also reopens a gate closed by an earlier probe (see `Gate::check`).
        if !ctx.gate.check().await {
            continue;
        }
        match lease.hold(&ctx).await {
            Ok(true) => {}
            Ok(false) => {
                ctx.metrics.backlog.clear();
                continue;
            }
            Err(e) => {
                warn!(reason = ?e, "reconciler: cannot take the lease");
                continue;
            }
        }
        if let Err(e) = pass(&ctx, &stop, &lease).await {
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
    let lease = Lease::new(ctx);
    if !lease.hold(ctx).await? {
        info!("reconciler: another holder has the lease; nothing to do");
        return Ok(false);
    }
    pass(ctx, &CancellationToken::new(), &lease).await?;
    Ok(true)
}

/// This process's claim to be the one reconciler: held for three `reconcile_every_ms`
/// (across a missed renewal or two), renewed before every page of a pass and before every
/// repair, so a pass longer than that never runs on two workers at once, and a pass that
/// stalled (a frozen process, a call that took almost its `io_timeout_ms`) until its lease
/// went to another worker repairs nothing more. Left open: a stall inside one repair, between
/// its renewal and its writes; every repair is idempotent, and only fencing tokens checked by
/// the stores would close it.
pub(crate) struct Lease {
    holder: String,
    ttl: Duration,
}

impl Lease {
    fn new(ctx: &Ctx) -> Lease {
        Lease {
            holder: ctx.seams.entropy.uuid().to_string(),
            ttl: Duration::from_millis(ctx.settings.reconcile_every_ms).saturating_mul(3),
        }
    }

    /// Takes or renews the lease; false while another holder has it.
    async fn hold(&self, ctx: &Ctx) -> Result<bool, Failure> {
        let take = ctx.ports.state.take_lease(LEASE, &self.holder, self.ttl);
        ctx.io("take lease", take).await
    }
}

/// One pass, under `lease` (taken by the caller): the expired batches swept, then the
/// unsettled ones checked. A pass whose lease went to another holder (seen before a page or
/// a repair) stops there. What a pass reads is what is due or in flight, never every batch kept: the index
/// is read only up to its first batch not expired, and a batch settled (completed with its
/// effects done, or deleted) leaves the unsettled list.
pub(crate) async fn pass(
    ctx: &Ctx,
    stop: &CancellationToken,
    lease: &Lease,
) -> Result<(), Failure> {
    if sweep(ctx, stop, lease).await? == Walk::Stopped {
        return Ok(());
    }
    let backlog = Backlog::read(ctx).await?;
    backlog.publish(ctx, ctx.now());
    if let Some(stalled) = check_unsettled(ctx, stop, lease, &backlog).await? {
        ctx.metrics.backlog.stalled(stalled);
    }
    Ok(())
}

/// Whether a walk over an index went to its end.
#[derive(Debug, PartialEq, Eq)]
enum Walk {
    Finished,
    Stopped,
}

/// Renews the lease before every page but the first; false (with a warning) when it went to
/// another holder.
async fn still_held(ctx: &Ctx, lease: &Lease, first_page: &mut bool) -> Result<bool, Failure> {
    if std::mem::take(first_page) || lease.hold(ctx).await? {
        return Ok(true);
    }
    warn!("reconciler: the lease went to another holder mid-pass; it goes on");
    Ok(false)
}

/// Renews the lease right before a repair; false (with a warning) when it went to another
/// holder while this pass was checking: the pass stops, and the holder repairs.
async fn may_repair(ctx: &Ctx, lease: &Lease) -> Result<bool, Failure> {
    if lease.hold(ctx).await? {
        return Ok(true);
    }
    warn!("reconciler: the lease went to another holder before a repair; this pass stops");
    Ok(false)
}

/// Sweeps every expired batch, soonest first; the index is read only up to its first batch
/// that has not expired. A batch is swept only once it has expired by every host's clock:
/// this worker's may run [`HOST_CLOCK_SKEW`] ahead of the state store's, which keeps the
/// batch alive until then, and a job recording its outcome meanwhile would leave renditions
/// written after the sweep (found by the simulation, seeds 5058 and 6059).
async fn sweep(ctx: &Ctx, stop: &CancellationToken, lease: &Lease) -> Result<Walk, Failure> {
    let skew = chrono::Duration::from_std(HOST_CLOCK_SKEW).unwrap_or_default();
    let mut first_page = true;
    loop {
        if !still_held(ctx, lease, &mut first_page).await? {
            return Ok(Walk::Stopped);
        }
        let state = &ctx.ports.state;
        // Swept batches leave the index, so the next page starts at 0 again.
        let page = ctx
            .io("list batches", state.indexed_batches(0, PAGE))
            .await?;
        let now = ctx.now();
        for indexed in &page {
            if stop.is_cancelled() {
                return Ok(Walk::Stopped);
            }
            if indexed.expires_at + skew > now {
                return Ok(Walk::Finished);
            }
            if !may_repair(ctx, lease).await? {
                return Ok(Walk::Stopped);
            }
            sweep_expired(ctx, indexed).await?;
        }
        if page.len() < PAGE {
            return Ok(Walk::Finished);
        }
    }
}

/// Checks every unsettled batch that has not expired; a settled one leaves the list. How
/// many were found stalled, when the walk went to the end of the list.
async fn check_unsettled(
    ctx: &Ctx,
    stop: &CancellationToken,
    lease: &Lease,
    backlog: &Backlog,
) -> Result<Option<u64>, Failure> {
    let mut offset = 0;
    let mut stalled = 0;
    let mut first_page = true;
    loop {
        if !still_held(ctx, lease, &mut first_page).await? {
            return Ok(None);
        }
        let state = &ctx.ports.state;
        let page = ctx
            .io(
                "list unsettled batches",
                state.unsettled_batches(offset, PAGE),
            )
            .await?;
        let now = ctx.now();
        let mut settled = 0;
        for indexed in &page {
            if stop.is_cancelled() {
                return Ok(None);
            }
            // An expired batch is the sweep's, which takes it off this list too.
            if indexed.expires_at <= now {
                continue;
            }
            match check(ctx, lease, indexed.id, now, backlog).await? {
                Check::LeaseLost => return Ok(None),
                Check::Settled => {
                    ctx.io("settle batch", state.settle_batch(indexed.id))
                        .await?;
                    settled += 1;
                }
                Check::Stalled => stalled += 1,
                Check::Unsettled => {}
            }
        }
        if page.len() < PAGE {
            return Ok(Some(stalled));
        }
        offset += page.len() - settled;
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
    ctx.metrics.repaired(Repair::Swept, 1);
    info!(batch_id = %batch.id, removed, "reconciler: expired batch swept");
    Ok(())
}

/// What checking an unsettled batch found.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    /// Nothing will ever need repairing: completed with its effects done, or deleted
    /// (swept when it expires).
    Settled,
    /// Still in flight, and moving.
    Unsettled,
    /// Still in flight, without progress for `stall_after_ms`: waiting behind a backlog, or
    /// repaired now.
    Stalled,
    /// Due a repair, but the lease went to another holder: left to it.
    LeaseLost,
}

/// Repairs a live batch that has shown no progress for `stall_after_ms`.
async fn check(
    ctx: &Ctx,
    lease: &Lease,
    batch_id: Uuid,
    now: DateTime<Utc>,
    backlog: &Backlog,
) -> Result<Check, Failure> {
    let state = &ctx.ports.state;
    let Some(batch) = ctx.io("get batch", state.get_batch(batch_id)).await? else {
        return Ok(Check::Settled);
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
        BatchState::Completed => return Ok(Check::Settled),
        _ => return Ok(Check::Unsettled),
    };
    let watch = state.unchanged_since(batch_id, &marker, now, false);
    let Some(since) = ctx.io("watch batch", watch).await? else {
        return Ok(Check::Settled);
    };
    let stall = Duration::from_millis(ctx.settings.stall_after_ms);
    if (now - since).to_std().unwrap_or(Duration::ZERO) < stall {
        return Ok(Check::Unsettled);
    }
    if batch.state == BatchState::Completed {
        // Its finalisation or callback may be among those waiting, or a handler holds a
        // fresh claim on an effect (a callback retrying a slow receiver): waiting, not lost.
        // A redrive would only find the claim held and cycle through the delay queue until
        // the chain ends (found by `tirage-sim` with silent receivers in calm runs).
        if backlog.effects_waiting > 0 || effect_in_hand(ctx, &batch, now).await? {
            ctx.metrics.repaired(Repair::Waiting, 1);
            return Ok(Check::Stalled);
        }
        if !may_repair(ctx, lease).await? {
            return Ok(Check::LeaseLost);
        }
        redrive_finalisation(ctx, batch_id).await?;
    } else {
        if !backlog.passed(since, now) {
            // Queued behind a longer backlog: waiting, not lost. Checked again next pass.
            ctx.metrics.repaired(Repair::Waiting, 1);
            info!(%batch_id, waiting = backlog.waiting, "reconciler: a batch without progress waits behind a backlog; not republished");
            return Ok(Check::Stalled);
        }
        if !may_repair(ctx, lease).await? {
            return Ok(Check::LeaseLost);
        }
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
    Ok(Check::Stalled)
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

/// Whether a live handler holds one of `batch`'s effects: its claim is younger than a dead
/// handler's would be (`finalize::claim_stale_after`).
async fn effect_in_hand(ctx: &Ctx, batch: &Batch, now: DateTime<Utc>) -> Result<bool, Failure> {
    let stale = chrono::Duration::from_std(claim_stale_after(ctx)).unwrap_or_default();
    for effect in [Effect::Event, Effect::Callback] {
        let claimed = ctx.ports.state.effect_claimed_at(batch.id, effect);
        if ctx
            .io("effect claimed?", claimed)
            .await?
            .is_some_and(|at| at > now - stale)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn redrive_finalisation(ctx: &Ctx, batch_id: Uuid) -> Result<(), Failure> {
    let item = WorkItem::FinalizeBatch {
        batch_id,
        redrive: true,
    };
    let trace = propagation::current();
    ctx.io(
        "publish finalisation",
        ctx.ports.queue.publish(&item, &trace),
    )
    .await?;
    ctx.metrics.repaired(Repair::Redriven, 1);
    warn!(%batch_id, "reconciler: a completed batch's effects stayed undone; finalisation redriven");
    Ok(())
}

/// Publishes the job of every queued photo of `batch` again.
async fn republish_queued(ctx: &Ctx, batch: &Batch) -> Result<(), Failure> {
    let state = &ctx.ports.state;
    let mut cursor: Option<String> = None;
    let mut republished = 0u64;
    // The republished jobs continue this pass's trace, the same for every one.
    let trace = propagation::current();
    loop {
        let list = state.list_photos(batch.id, cursor.as_deref(), PAGE);
        let page = ctx.io("list photos", list).await?;
        for photo in page.photos.iter().filter(|p| p.state == PhotoState::Queued) {
            let job = WorkItem::Resize(ResizeJob::new(batch, photo.id, None, ctx.now()));
            ctx.io("publish job", ctx.ports.queue.publish(&job, &trace))
                .await?;
            republished += 1;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ctx.metrics.repaired(Repair::Republished, republished);
    warn!(batch_id = %batch.id, republished, "reconciler: a stalled batch's queued jobs published again");
    Ok(())
}
