//! One resize job: read the original, resize it on the CPU pool, store the renditions. The
//! outcome is recorded by [`crate::outcome`]; this module only does the work, and does it so
//! that running it twice has the effect of running it once: renditions go to deterministic
//! keys, and a photo that already has an outcome is not resized again.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::future::try_join_all;
use tirage_core::codes::FailureCode;
use tirage_core::keys;
use tirage_core::{PhotoOutcome, PhotoState, Rendition, ResizeJob};
use tirage_ports::{ObjectBody, ObjectStoreError, RecordResult, RunHold, RunStart};
use tracing::{Instrument, info_span, warn};
use uuid::Uuid;

use crate::context::Ctx;
use crate::cpu::OffloadError;
use crate::failure::Failure;

/// What a resize attempt produced, before anything is recorded.
pub(crate) enum Attempted {
    /// The renditions are stored; this is the outcome to record.
    Rendered(PhotoOutcome),
    /// Nothing was done, because the store already answers for this photo: it has its
    /// outcome (a duplicate delivery) or was never registered (a stray, replayed or forged
    /// job). Never `Recorded`.
    Answered(RecordResult),
    /// Nothing was done: another run holds the photo right now (this delivery is a copy).
    Held,
}

/// Does the work of one resize job; `run` names this run's hold on the photo
/// ([`tirage_ports::Runs`]). `Err(Failure::Gone)` when the batch no longer exists.
pub(crate) async fn run(
    ctx: &Ctx,
    job: &ResizeJob,
    attempt: u32,
    redelivered: bool,
    run: Uuid,
) -> Result<Attempted, Failure> {
    if attempt == 1 && !redelivered {
        let lag = (ctx.now() - job.published_at)
            .to_std()
            .unwrap_or(Duration::ZERO);
        ctx.metrics.publish_to_start.observe(lag.as_secs_f64());
    }
    let state = &ctx.ports.state;
    let now = ctx.now();
    if let Some(through) = ctx.consumed.take(job.published_at, now) {
        // Best effort: a mark that lags only makes the reconciler wait longer.
        let advance = state.advance_consumed_mark(through, now);
        if let Err(e) = ctx.io("advance the consumed mark", advance).await {
            warn!(reason = ?e, "could not advance the consumed mark");
        }
    }
    let (batch, photo, crashed) = tokio::join!(
        ctx.io("get batch", state.get_batch(job.batch_id)),
        ctx.io("get photo", state.get_photo(job.batch_id, job.photo_id)),
        ctx.io(
            "get crashed runs",
            state.crashed_runs(job.batch_id, job.photo_id, now)
        ),
    );
    let Some(batch) = batch? else {
        return Err(Failure::Gone);
    };
    match photo? {
        None => return Ok(Attempted::Answered(RecordResult::UnknownPhoto { batch })),
        // Already recorded: skip the CPU work, but still settle completion.
        Some(photo) if photo.state != PhotoState::Queued => {
            return Ok(Attempted::Answered(RecordResult::AlreadyRecorded { batch }));
        }
        Some(_) => {}
    }
    let crashed = crashed?;
    if crashed >= ctx.settings.crash_limit {
        return Err(crashed_too_often(crashed));
    }
    // The steps are spans of the job's trace: where a photo's time goes, photo by photo.
    let source = download(ctx, job)
        .instrument(info_span!("download original"))
        .await?;
    let engine = run_engine(ctx, job, run, crashed > 0, source);
    let Some(resized) = engine.instrument(info_span!("resize")).await? else {
        return Ok(Attempted::Held);
    };
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
                digest: Some(Rendition::digest_of(&r.data)),
            })
            .collect(),
        warnings: resized.warnings.clone(),
    };
    upload(ctx, job, resized.renditions).await?;
    Ok(Attempted::Rendered(outcome))
}

/// Reads the job's photo's original (its key derived from the ids, never taken from the
/// message: no message can make a worker read another object).
async fn download(ctx: &Ctx, job: &ResizeJob) -> Result<Bytes, Failure> {
    // The API publishes only after the original is stored, so a missing original will not
    // appear later.
    let missing = |what: String| Failure::Permanent(FailureCode::SourceMissing, what);
    // One GET, its size known before its body is read: an original over the byte limit
    // (replaced after `complete`, or stored some other way) fails the photo before a byte of
    // it is read into memory.
    let get = async {
        ctx.ports
            .objects
            .get_stream(&job.original_key())
            .await
            .map_err(|e| match e {
                ObjectStoreError::NotFound(_) => missing(e.to_string()),
                e => e.into(),
            })
    };
    let body = ctx.io("get original", get).await?;
    let limit = ctx.settings.max_source_bytes;
    if body.size > limit {
        return Err(Failure::Permanent(
            FailureCode::TooLarge,
            format!(
                "the original is {} bytes, over the limit of {limit}",
                body.size
            ),
        ));
    }
    ctx.io("read original", read_whole(body)).await
}

/// The whole body in one buffer of its announced size (no regrowing copies); a stream that
/// breaks off is transient, one longer than announced is refused.
async fn read_whole(body: ObjectBody) -> Result<Bytes, Failure> {
    let ObjectBody { size, mut stream } = body;
    let mut buffer = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Failure::Transient(format!("reading the original: {e}")))?;
        if (buffer.len() + chunk.len()) as u64 > size {
            return Err(Failure::Transient(format!(
                "the original grew past its announced {size} bytes while being read"
            )));
        }
        buffer.extend_from_slice(&chunk);
    }
    if (buffer.len() as u64) < size {
        return Err(Failure::Transient(format!(
            "the original ended after {} of {size} bytes",
            buffer.len()
        )));
    }
    Ok(buffer.freeze())
}

/// Stores the renditions, all at once, under their deterministic keys.
async fn upload(
    ctx: &Ctx,
    job: &ResizeJob,
    renditions: Vec<tirage_engine::Rendition>,
) -> Result<(), Failure> {
    let format = job.options.format;
    let puts = renditions.into_iter().map(|r| {
        let key = keys::rendition_key(job.batch_id, job.photo_id, r.size, format);
        let body = Bytes::from(r.data);
        let span = info_span!("write rendition", size = r.size, bytes = body.len());
        async move {
            let put = ctx.ports.objects.put(&key, body, format.content_type());
            ctx.io("put rendition", put).await
        }
        .instrument(span)
    });
    try_join_all(puts).await?;
    Ok(())
}

fn crashed_too_often(runs: u32) -> Failure {
    Failure::Permanent(
        FailureCode::WorkerCrashed,
        format!("{runs} runs of this photo ended with their worker dying"),
    )
}

/// Runs the engine on the CPU pool: at most `concurrency` resizes at once, off the async
/// runtime; alone when this photo's earlier runs ended with their worker dying (`suspect`).
/// The run holds the photo from right before the engine starts until it returns, so that a
/// worker dying from here on is held against this photo, and a copy of the job arriving
/// meanwhile is told it is one. `None` when another run holds the photo. A panic fails this
/// job only.
async fn run_engine(
    ctx: &Ctx,
    job: &ResizeJob,
    run: Uuid,
    suspect: bool,
    source: Bytes,
) -> Result<Option<tirage_engine::Resized>, Failure> {
    if suspect {
        warn!("this photo's earlier runs ended with their worker dying; running it alone");
    }
    let permit = ctx
        .cpu
        .acquire(suspect)
        .await
        .map_err(|e| Failure::Transient(format!("cpu pool closed: {e}")))?;
    let state = &ctx.ports.state;
    let hold = RunHold {
        token: run,
        now: ctx.now(),
        lasts: ctx.settings.run_hold(),
    };
    let started = state.start_run(job.batch_id, job.photo_id, hold);
    let crashed = match ctx.io("start run", started).await {
        Ok(RunStart::Held) => return Ok(None),
        Ok(RunStart::Started { crashed }) => crashed,
        Err(failure) => {
            // The hold may have been taken with the answer lost: ended now, or it would
            // lapse and count as a crash of this photo.
            end_run_surely(ctx, job, run).await;
            return Err(failure);
        }
    };
    if crashed >= ctx.settings.crash_limit {
        end_run_surely(ctx, job, run).await;
        return Err(crashed_too_often(crashed));
    }
    let resizer = ctx.seams.resizer.clone();
    let options = job.options.clone();
    let limits = ctx.settings.limits();
    let engine = ctx.seams.offload.run(Box::new(move || {
        let _permit = permit;
        std::panic::catch_unwind(AssertUnwindSafe(|| resizer(&source, &options, &limits)))
    }));
    let joined = holding(ctx, job, hold, engine).await;
    end_run_surely(ctx, job, run).await;
    let internal = |what: &str| Failure::Permanent(FailureCode::InternalError, what.into());
    match joined {
        Ok(Ok(Ok(resized))) => Ok(Some(resized)),
        Ok(Ok(Err(e))) => Err(Failure::Permanent(e.code(), e.to_string())),
        Ok(Err(_panic)) => Err(internal("the engine panicked")),
        Err(OffloadError::Panicked) => Err(internal("the engine task panicked")),
        Err(e @ OffloadError::Cancelled(_)) => Err(Failure::Transient(e.to_string())),
    }
}

/// Awaits `work` while renewing the run's hold every third of its term.
async fn holding<T>(
    ctx: &Ctx,
    job: &ResizeJob,
    mut hold: RunHold,
    work: impl std::future::Future<Output = T>,
) -> T {
    let every = ctx.settings.run_hold() / 3;
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            out = &mut work => return out,
            () = tokio::time::sleep(every) => {}
        }
        hold.now = ctx.now();
        let renew = ctx.ports.state.renew_run(job.batch_id, job.photo_id, hold);
        match ctx.io("renew run", renew).await {
            Ok(true) => {}
            Ok(false) => warn!("this run's hold lapsed and another run took the photo"),
            Err(e) => warn!(reason = ?e, "could not renew this run's hold"),
        }
    }
}

/// Ends the run's hold, one try (best effort: a hold left behind lapses, and the next run
/// then counts this one as crashed).
pub(crate) async fn end_run(ctx: &Ctx, job: &ResizeJob, run: Uuid) {
    let end = ctx.ports.state.end_run(job.batch_id, job.photo_id, run);
    if let Err(e) = ctx.io("end run", end).await {
        warn!(reason = ?e, "could not end this run's hold");
    }
}

/// Ends the run's hold, trying again with the job's backoff for as long as the hold lasts:
/// a hold left behind would count as a crash, and two lost `end_run`s made a sound photo
/// fail `worker_crashed` (found by the simulator with state-store faults, `tirage-sim` seed
/// 65). Past the hold's term the store is taken for down, as a run of its own would be.
/// A batch that is gone holds nothing any more.
async fn end_run_surely(ctx: &Ctx, job: &ResizeJob, run: Uuid) {
    let end = || ctx.ports.state.end_run(job.batch_id, job.photo_id, run);
    let ended = ctx.io_until("end run", ctx.settings.run_hold(), end, || async {});
    match ended.await {
        Ok(()) | Err(Failure::Gone) => {}
        Err(e) => warn!(reason = ?e, "could not end this run's hold"),
    }
}
