//! The reconciler, on states that failures really leave behind, arranged through the ports:
//! photos registered whose jobs never reached the broker, a completed batch whose effects a
//! dead handler claimed, an expired batch whose objects stayed in the object store.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tirage_ports::TraceContext;

use bytes::Bytes;
use chrono::Utc;
use tirage_core::codes::Effect;
use tirage_core::{BatchOptions, PhotoOutcome, Rendition, keys};
use tirage_engine::Limits;
use tirage_ports::Lane;
use tirage_worker::{ResizeFn, WorkerSettings};

use crate::common::*;

/// A worker whose reconciler runs every 100 ms and calls a batch stalled after 500 ms.
fn reconciling(mut settings: WorkerSettings) -> WorkerSettings {
    settings.reconcile_every_ms = 100;
    settings.stall_after_ms = 500;
    settings
}

fn done_outcome() -> PhotoOutcome {
    PhotoOutcome::Done {
        width: 640,
        height: 480,
        renditions: vec![Rendition {
            size: 360,
            width: 480,
            height: 360,
            bytes: 5,
            digest: None,
        }],
        warnings: Vec::new(),
    }
}

/// A batch queued behind a backlog longer than the stall threshold is waiting, not lost:
/// none of its jobs is published again, every photo is resized once, none fails.
pub async fn a_batch_behind_a_backlog_is_not_republished(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let ahead = batch_with(
        &ports,
        small_options(),
        None,
        (0..16).map(|i| vec![i]).collect(),
    )
    .await;
    let behind = batch_with(
        &ports,
        small_options(),
        None,
        vec![b"x".to_vec(), b"y".to_vec()],
    )
    .await;
    publish_all(&ports, &ahead).await;
    publish_all(&ports, &behind).await;
    // One slot, 100 ms a photo: the batch behind waits about 1.6 s, three stall thresholds.
    let slow: ResizeFn = Arc::new(|input: &[u8], options: &BatchOptions, limits: &Limits| {
        std::thread::sleep(Duration::from_millis(100));
        fake_engine()(input, options, limits)
    });
    let mut settings = reconciling(h.settings());
    settings.concurrency = 1;
    let worker = start(ports.clone(), settings, Some(slow)).await;
    // What operators see meanwhile: the most the reconciler's gauges showed.
    let gauges = worker.metrics.backlog.clone();
    let most = Arc::new(std::sync::Mutex::new((0i64, 0f64, 0i64)));
    let sampler = tokio::spawn({
        let (gauges, most) = (gauges.clone(), most.clone());
        async move {
            loop {
                let (waiting, oldest, stalled) = gauges.read(Lane::Resize);
                {
                    let mut m = most.lock().unwrap();
                    *m = (m.0.max(waiting), m.1.max(oldest), m.2.max(stalled));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    for f in [&ahead, &behind] {
        let batch = wait_completed(&ports, f.batch.id, WAIT).await;
        assert_eq!(batch.failed, 0, "{batch:?}");
    }
    sampler.abort();
    let (waiting, oldest, stalled) = *most.lock().unwrap();
    assert!(waiting > 0, "jobs were seen waiting");
    assert!(oldest > 0.0, "the oldest waiting job's age was seen");
    assert!(stalled >= 1, "the batch behind was seen without progress");
    wait_for("the gauges drained with the queue", WAIT, || {
        let (waiting, oldest, stalled) = gauges.read(Lane::Resize);
        waiting == 0 && oldest == 0.0 && stalled == 0
    })
    .await;
    let m = worker.metrics.clone();
    // A job is counted once settled, just after its outcome completed the batch.
    wait_for("every job settled", WAIT, || {
        m.job_count(JobKind::Resize, JobOutcome::Done)
            + m.job_count(JobKind::Resize, JobOutcome::Duplicate)
            >= 18
    })
    .await;
    assert_eq!(
        m.reconciled_count(Repair::Republished),
        0,
        "nothing republished"
    );
    assert!(
        m.reconciled_count(Repair::Waiting) > 0,
        "the reconciler saw the batch wait"
    );
    assert_eq!(
        m.job_count(JobKind::Resize, JobOutcome::Done),
        18,
        "every photo resized once"
    );
    assert_eq!(m.job_count(JobKind::Resize, JobOutcome::Duplicate), 0);
    worker.shutdown().await;
}

/// A callback whose receiver keeps failing for longer than the stall threshold: the
/// reconciler sees the batch's effects undone all that time, and its redrive must not start
/// a second chain of attempts beside the live one. One event, one delivered callback.
pub async fn a_redrive_never_doubles_a_live_callback(h: Arc<dyn Harness>) {
    const FAILURES: usize = 30;
    let ports = h.ports();
    let hook = hook(FAILURES as u32).await;
    let f = batch_with(
        &ports,
        small_options(),
        Some(hook.url.clone()),
        vec![b"a".to_vec()],
    )
    .await;
    let mut settings = reconciling(h.settings());
    // Attempts 20 ms to 200 ms apart for about 5 s, against a stall threshold of 1 s (a
    // claim goes stale after 500 ms unrenewed).
    settings.stall_after_ms = 1_000;
    settings.callback_retry_for_ms = 30_000;
    let worker = start(ports.clone(), settings, Some(fake_engine())).await;
    publish_all(&ports, &f).await;
    wait_completed(&ports, f.batch.id, WAIT).await;
    let m = worker.metrics.clone();
    wait_for("the callback delivered", WAIT, || {
        m.callback_count(CallbackOutcome::Delivered) >= 1
    })
    .await;
    // Long enough for a second chain, had one started, to deliver too.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        hook.requests.lock().unwrap().len(),
        FAILURES + 1,
        "every failed attempt, then one delivery"
    );
    assert_eq!(m.callback_count(CallbackOutcome::Delivered), 1);
    assert_eq!(m.events_published.get(), 1);
    // One chain of attempts: a second one would have met the first's delivery as done.
    assert_eq!(m.job_count(JobKind::Callback, JobOutcome::Duplicate), 0);
    assert_eq!(
        m.job_count(JobKind::Callback, JobOutcome::Retried)
            + m.job_count(JobKind::Callback, JobOutcome::Done),
        FAILURES as u64 + 1
    );
    assert!(
        m.reconciled_count(Repair::Waiting) + m.reconciled_count(Repair::Redriven) > 0,
        "the reconciler saw the effects undone past the stall threshold"
    );
    worker.shutdown().await;
}

/// Photos registered and stored, but their jobs lost before the broker had them: the batch
/// completes anyway.
pub async fn lost_jobs_are_published_again(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let f = batch_with(
        &ports,
        small_options(),
        None,
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
    )
    .await;
    // One job made it; two were lost.
    ports
        .queue
        .publish(&job(&f, f.photos[0]), &TraceContext::none())
        .await
        .unwrap();
    let worker = start(
        ports.clone(),
        reconciling(h.settings()),
        Some(fake_engine()),
    )
    .await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!(
        (batch.total, batch.done, batch.failed),
        (3, 3, 0),
        "{batch:?}"
    );
    assert!(worker.metrics.reconciled_count(Repair::Republished) >= 2);
    worker.shutdown().await;
}

/// A completed batch whose event and callback were claimed by a handler that died before
/// running them: the reconciler redrives the finalisation, each effect runs once, and the
/// settled batch leaves what later passes read.
pub async fn undone_effects_are_redriven(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let hook = hook(0).await;
    let f = batch_with(
        &ports,
        small_options(),
        Some(hook.url.clone()),
        vec![b"a".to_vec()],
    )
    .await;
    let state = &ports.state;
    state
        .record_outcome(f.batch.id, f.photos[0], &done_outcome())
        .await
        .unwrap();
    // Claimed an hour ago by a handler that died at once: stale by any rule
    // (`finalize::claim_stale_after` never goes below twice `io_timeout` plus 5 s).
    let long_ago = Utc::now() - chrono::Duration::hours(1);
    for effect in [Effect::Event, Effect::Callback] {
        let claim = state.claim_effect(f.batch.id, effect, long_ago, Duration::ZERO);
        assert!(claim.await.unwrap());
    }
    let worker = start(
        ports.clone(),
        reconciling(h.settings()),
        Some(fake_engine()),
    )
    .await;
    let deadline = Instant::now() + WAIT;
    while !(state
        .is_effect_done(f.batch.id, Effect::Event)
        .await
        .unwrap()
        && state
            .is_effect_done(f.batch.id, Effect::Callback)
            .await
            .unwrap())
    {
        assert!(Instant::now() < deadline, "effects never done");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A few more passes: a batch whose effects are done is left alone.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(hook.requests.lock().unwrap().len(), 1, "one callback");
    assert_eq!(worker.metrics.reconciled_count(Repair::Redriven), 1);
    // Settled: later passes no longer read it, but its sweep will.
    let unsettled = state.unsettled_batches(0, 100).await.unwrap();
    assert!(
        unsettled.iter().all(|b| b.id != f.batch.id),
        "a batch whose effects are done leaves the unsettled list: {unsettled:?}"
    );
    let indexed = state.indexed_batches(0, 100).await.unwrap();
    assert!(
        indexed.iter().any(|b| b.id == f.batch.id),
        "it stays indexed"
    );
    worker.shutdown().await;
}

/// `tirage-worker reconcile` with no worker running (workers scaled to zero): the first
/// pass notes the batch's progress, a pass after `stall_after_ms` publishes the lost jobs
/// again, and a worker that later starts (its own loop too slow to matter) finishes them.
pub async fn a_scheduled_pass_repairs_with_no_worker_running(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let f = batch_with(
        &ports,
        small_options(),
        None,
        vec![b"a".to_vec(), b"b".to_vec()],
    )
    .await;
    let pass = || async {
        tirage_worker::Worker::from_ports(reconciling(h.settings()), ports.clone())
            .await
            .expect("worker builds")
            .reconcile_once()
            .await
            .expect("the pass runs")
    };
    assert!(pass().await, "the lease was free");
    // Within the lease another pass finds it held, and leaves the work to its holder.
    assert!(
        !pass().await,
        "the lease is held for three reconcile periods"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(pass().await, "the lease lapsed");
    let mut slow = h.settings();
    slow.reconcile_every_ms = 600_000;
    let worker = start(ports.clone(), slow, Some(fake_engine())).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!(
        (batch.total, batch.done, batch.failed),
        (2, 2, 0),
        "{batch:?}"
    );
    worker.shutdown().await;
}

/// An expired batch's objects are removed; a live batch's stay.
pub async fn expired_batches_leave_no_objects(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let live = batch_with(&ports, small_options(), None, vec![b"live".to_vec()]).await;
    let mut expiring = new_batch(small_options(), None);
    expiring.expires_at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    ports
        .state
        .create_batch(&expiring, tirage_ports::Cap::Unlimited)
        .await
        .unwrap();
    // Its bytes were charged to its payer: the sweep gives them back.
    let address = format!("addr-{}", uuid::Uuid::new_v4());
    let payer = tirage_ports::Payer {
        session_id: &expiring.owner,
        address: &address,
    };
    let caps = tirage_ports::StorageCaps {
        per_session: tirage_ports::ByteCap::Unlimited,
        per_address: tirage_ports::ByteCap::Unlimited,
    };
    let charge = ports.state.charge_stored(&expiring, payer, 15, caps);
    assert_eq!(charge.await.unwrap(), tirage_ports::Charge::Charged);
    let photo = uuid::Uuid::new_v4();
    let stored = [
        keys::original_key(expiring.id, photo),
        keys::rendition_key(expiring.id, photo, 360, expiring.options.format),
        // An upload whose ticket was never completed.
        keys::original_key(expiring.id, uuid::Uuid::new_v4()),
    ];
    for key in &stored {
        let body = Bytes::from_static(b"bytes");
        ports.objects.put(key, body, "image/jpeg").await.unwrap();
    }
    let worker = start(
        ports.clone(),
        reconciling(h.settings()),
        Some(fake_engine()),
    )
    .await;
    // The sweep removes the objects, then the index entry, then counts: wait for all three
    // (the objects alone can be gone while the entry is still being forgotten).
    let deadline = Instant::now() + WAIT;
    loop {
        let mut left = 0;
        for key in &stored {
            if ports.objects.head(key).await.unwrap().is_some() {
                left += 1;
            }
        }
        let indexed = ports.state.indexed_batches(0, 100).await.unwrap();
        let remembered = indexed.iter().any(|b| b.id == expiring.id);
        let counted = worker.metrics.reconciled_count(Repair::Swept) >= 1;
        if left == 0 && !remembered && counted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} objects left, still indexed: {remembered}, sweep counted: {counted}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let charged = ports.state.stored_bytes(payer).await.unwrap();
    assert_eq!(
        (charged.session, charged.address),
        (0, 0),
        "given back by the sweep"
    );
    let live_original = keys::original_key(live.batch.id, live.photos[0]);
    assert!(ports.objects.head(&live_original).await.unwrap().is_some());
    let indexed = ports.state.indexed_batches(0, 100).await.unwrap();
    assert!(
        indexed.iter().any(|b| b.id == live.batch.id),
        "the live batch stays"
    );
    worker.shutdown().await;
}
