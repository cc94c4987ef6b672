//! The worker's behaviour, written once over a [`Harness`] and run against the embedded
//! adapters (tests/embedded.rs) and the real Redis, RabbitMQ and Garage (tests/services.rs).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tirage_ports::TraceContext;

use tirage_core::codes::{FailureCode, PhotoWarning};
use tirage_core::{BatchOptions, BatchState, OutputFormat, PhotoState, keys};
use tirage_ports::WorkItem;
use tirage_worker::Ports;

use crate::common::*;

mod admin;
mod crashes;
mod finalize;
mod reconcile;
mod reconcile_lease;
mod sizes;
mod strays;

pub use admin::*;
pub use crashes::*;
pub use finalize::*;
pub use reconcile::*;
pub use reconcile_lease::*;
pub use sizes::*;
pub use strays::*;

/// Expected rendition dimensions: short side scaled to `size`, never upscaled.
fn expected_dims(w: u32, h: u32, size: u32) -> (u32, u32) {
    let short = w.min(h);
    if size >= short {
        return (w, h);
    }
    let scale = |x: u32| ((x as u64 * size as u64 + short as u64 / 2) / short as u64) as u32;
    (scale(w), scale(h))
}

pub async fn happy_path(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let mut events = h.subscribe_events().await;
    let sources = [(1600u32, 1200u32), (1200, 1600), (640, 480)];
    let originals = sources.iter().map(|&(w, hh)| jpeg(w, hh)).collect();
    let f = batch_with(&ports, BatchOptions::default(), None, originals).await;
    let worker = start(ports.clone(), h.settings(), None).await;
    publish_all(&ports, &f).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!(
        (batch.total, batch.done, batch.failed),
        (3, 3, 0),
        "{batch:?}"
    );
    for (photo, &(w, hh)) in f.photos.iter().zip(&sources) {
        let rec = ports
            .state
            .get_photo(f.batch.id, *photo)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.state, PhotoState::Done, "{rec:?}");
        assert_eq!((rec.width, rec.height), (Some(w), Some(hh)));
        let sizes: Vec<u32> = rec.outputs.iter().map(|r| r.size).collect();
        assert_eq!(sizes, vec![1080, 720, 360]);
        for out in &rec.outputs {
            let key = keys::rendition_key(f.batch.id, *photo, out.size, OutputFormat::Jpeg);
            let data = ports.objects.get(&key).await.expect("rendition stored");
            assert_eq!(data.len() as u64, out.bytes, "{key}");
            // The digest (the rendition's ETag) is that of the stored bytes.
            let digest = tirage_core::model::Rendition::digest_of(&data);
            assert_eq!(out.digest.as_deref(), Some(digest.as_str()), "{key}");
            let img = image::load_from_memory_with_format(&data, image::ImageFormat::Jpeg)
                .expect("rendition is a JPEG");
            let (ew, eh) = expected_dims(w, hh, out.size);
            assert_eq!(
                (img.width(), img.height()),
                (out.width, out.height),
                "{key}"
            );
            assert!(
                ew.abs_diff(out.width) <= 1 && eh.abs_diff(out.height) <= 1,
                "{key}: {}x{} expected {ew}x{eh}",
                out.width,
                out.height
            );
        }
    }
    let got = for_batch(
        events_within(&mut *events, Duration::from_secs(2)).await,
        f.batch.id,
    );
    assert_eq!(got.len(), 1, "exactly one batch.completed event: {got:?}");
    assert_eq!((got[0].total, got[0].done, got[0].failed), (3, 3, 0));
    assert_eq!(
        worker.metrics.job_count(JobKind::Resize, JobOutcome::Done),
        3
    );
    worker.shutdown().await;
}

pub async fn same_job_twice_counts_once(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let mut events = h.subscribe_events().await;
    let f = batch_with(
        &ports,
        small_options(),
        None,
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
    )
    .await;
    let worker = start(ports.clone(), h.settings(), Some(fake_engine())).await;
    for p in &f.photos {
        // The duplicate is a second publish (not a redelivery), like a publisher retry.
        ports
            .queue
            .publish(&job(&f, *p), &TraceContext::none())
            .await
            .unwrap();
        ports
            .queue
            .publish(&job(&f, *p), &TraceContext::none())
            .await
            .unwrap();
    }
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    let m = worker.metrics.clone();
    wait_for("6 resize deliveries settled", WAIT, || {
        m.job_count(JobKind::Resize, JobOutcome::Done)
            + m.job_count(JobKind::Resize, JobOutcome::Duplicate)
            == 6
    })
    .await;
    // Once more after completion: still nothing moves.
    ports
        .queue
        .publish(&job(&f, f.photos[0]), &TraceContext::none())
        .await
        .unwrap();
    wait_for("late duplicate settled", WAIT, || {
        m.job_count(JobKind::Resize, JobOutcome::Duplicate) == 4
    })
    .await;
    let again = ports.state.get_batch(f.batch.id).await.unwrap().unwrap();
    assert_eq!((batch.total, batch.done, batch.failed), (3, 3, 0));
    assert_eq!(
        (again.total, again.done, again.failed, again.state),
        (3, 3, 0, BatchState::Completed)
    );
    assert_eq!(m.job_count(JobKind::Resize, JobOutcome::Done), 3);
    let got = for_batch(
        events_within(&mut *events, Duration::from_secs(2)).await,
        f.batch.id,
    );
    assert_eq!(got.len(), 1, "one event despite duplicates: {got:?}");
    // The renditions are charged to the batch's payer once each, whatever ran twice.
    let mut kept = 0;
    for photo in &f.photos {
        let record = photo_record(&ports, f.batch.id, *photo).await;
        kept += record.outputs.iter().map(|r| r.bytes).sum::<u64>();
    }
    assert!(kept > 0);
    let payer = tirage_ports::Payer {
        session_id: &f.batch.owner,
        address: "",
    };
    let charged = ports.state.stored_bytes(payer).await.unwrap();
    assert_eq!(charged.session, kept);
    worker.shutdown().await;
}

pub async fn poison_image_fails_without_retry(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let f = batch_with(
        &ports,
        BatchOptions::default(),
        None,
        vec![
            b"this is not an image at all".to_vec(),
            vec![0xff, 0xd8, 0xff, 0xe0, 0, 16, b'J'],
        ],
    )
    .await;
    let worker = start(ports.clone(), h.settings(), None).await;
    publish_all(&ports, &f).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!((batch.total, batch.done, batch.failed), (2, 0, 2));
    for p in &f.photos {
        let rec = ports
            .state
            .get_photo(f.batch.id, *p)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.state, PhotoState::Failed);
        let code = rec.error.unwrap();
        assert!(
            ["unsupported_format", "corrupt_image"].contains(&code.as_str()),
            "{code}"
        );
    }
    let m = worker.metrics.clone();
    wait_for("two jobs counted failed", WAIT, || {
        m.job_count(JobKind::Resize, JobOutcome::Failed) == 2
    })
    .await;
    assert_eq!(m.job_count(JobKind::Resize, JobOutcome::Retried), 0);
    assert!(
        h.take_dead_letters()
            .await
            .iter()
            .all(|d| !mentions(d, f.batch.id))
    );
    worker.shutdown().await;
}

fn mentions(d: &DeadLetter, batch_id: uuid::Uuid) -> bool {
    match &d.item {
        Some(WorkItem::Resize(j)) => j.batch_id == batch_id,
        Some(
            WorkItem::FinalizeBatch { batch_id: b, .. } | WorkItem::Callback { batch_id: b, .. },
        ) => *b == batch_id,
        None => false,
    }
}

pub async fn store_outage_is_retried_then_done(h: Arc<dyn Harness>) {
    let base = h.ports();
    let f = batch_with(&base, small_options(), None, vec![b"x".to_vec()]).await;
    let flaky = Arc::new(flaky_store(base.objects.clone(), 3));
    let ports = Ports {
        objects: flaky.clone(),
        ..base.clone()
    };
    let worker = start(ports.clone(), h.settings(), Some(fake_engine())).await;
    publish_all(&ports, &f).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!((batch.done, batch.failed), (1, 0));
    assert_eq!(flaky.hooks.failed.load(Ordering::SeqCst), 3);
    // The batch completes before the job is acked and counted: wait for the count.
    let m = worker.metrics.clone();
    wait_for("job counted done", WAIT, || {
        m.job_count(JobKind::Resize, JobOutcome::Done) == 1
    })
    .await;
    assert!(m.job_count(JobKind::Resize, JobOutcome::Retried) >= 1);
    for size in [720, 360] {
        let key = keys::rendition_key(f.batch.id, f.photos[0], size, OutputFormat::Jpeg);
        assert!(base.objects.head(&key).await.unwrap().is_some(), "{key}");
    }
    worker.shutdown().await;
}

/// The retry budget is elapsed time from the first retry, not a count: a job failing fast
/// is retried as often as its backoff allows within it, then the photo fails.
pub async fn a_spent_retry_budget_dead_letters(h: Arc<dyn Harness>) {
    let base = h.ports();
    let f = batch_with(
        &base,
        small_options(),
        None,
        vec![b"x".to_vec(), b"y".to_vec()],
    )
    .await;
    let ports = Ports {
        objects: Arc::new(flaky_store(base.objects.clone(), u32::MAX)),
        ..base.clone()
    };
    let settings = tirage_worker::WorkerSettings {
        retry_base_ms: 50,
        retry_cap_ms: 50,
        retry_for_ms: 1_000,
        ..h.settings()
    };
    let worker = start(ports.clone(), settings, Some(fake_engine())).await;
    let published = Instant::now();
    publish_all(&ports, &f).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!((batch.total, batch.done, batch.failed), (2, 0, 2));
    let took = published.elapsed();
    assert!(
        took >= Duration::from_millis(1_000),
        "gave up after {took:?}"
    );
    for p in &f.photos {
        let rec = base.state.get_photo(f.batch.id, *p).await.unwrap().unwrap();
        assert_eq!(rec.error, Some(FailureCode::RetriesExhausted));
    }
    let m = worker.metrics.clone();
    wait_for("two dead-lettered", WAIT, || {
        m.job_count(JobKind::Resize, JobOutcome::DeadLettered) == 2
    })
    .await;
    // 1 s of retries 50 ms apart: far more than a count-based budget's handful, and no
    // more than the budget allows.
    let retried = m.job_count(JobKind::Resize, JobOutcome::Retried);
    assert!((2 * 8..=2 * 23).contains(&retried), "{retried} retries");
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead.extend(
            h.take_dead_letters()
                .await
                .into_iter()
                .filter(|d| mentions(d, f.batch.id)),
        );
        if dead.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(
        dead.iter().all(|d| d.reason.contains("retries_exhausted")),
        "{dead:?}"
    );
    worker.shutdown().await;
}

pub async fn a_panic_fails_only_its_job(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let f = batch_with(
        &ports,
        small_options(),
        None,
        vec![b"PANIC".to_vec(), b"fine".to_vec()],
    )
    .await;
    let worker = start(ports.clone(), h.settings(), Some(panicking_engine())).await;
    publish_all(&ports, &f).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!((batch.done, batch.failed), (1, 1));
    let rec = ports
        .state
        .get_photo(f.batch.id, f.photos[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.error, Some(FailureCode::InternalError));
    assert!(!worker.task.is_finished(), "the worker survives");
    worker.shutdown().await;
}

pub async fn deleted_batch_is_dropped(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let f = batch_with(&ports, small_options(), None, vec![b"a".to_vec()]).await;
    ports.state.delete_batch(f.batch.id).await.unwrap();
    ports
        .objects
        .delete_prefix(&keys::batch_prefix(f.batch.id))
        .await
        .unwrap();
    let worker = start(ports.clone(), h.settings(), Some(fake_engine())).await;
    publish_all(&ports, &f).await;
    let m = worker.metrics.clone();
    wait_for("job dropped", WAIT, || {
        m.job_count(JobKind::Resize, JobOutcome::Dropped) == 1
    })
    .await;
    let key = keys::rendition_key(f.batch.id, f.photos[0], 720, OutputFormat::Jpeg);
    assert!(ports.objects.head(&key).await.unwrap().is_none());
    assert!(
        h.take_dead_letters()
            .await
            .iter()
            .all(|d| !mentions(d, f.batch.id))
    );
    worker.shutdown().await;
}

pub async fn shutdown_finishes_in_flight_within_grace(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let f = batch_with(&ports, small_options(), None, vec![b"a".to_vec()]).await;
    let settings = tirage_worker::WorkerSettings {
        shutdown_grace_ms: 10_000,
        ..h.settings()
    };
    // The job is still resizing when the stop comes; it finishes within the grace period.
    let worker = start(
        ports.clone(),
        settings,
        Some(slow_engine(Duration::from_millis(500))),
    )
    .await;
    publish_all(&ports, &f).await;
    let m = worker.metrics.clone();
    wait_for("job in flight", WAIT, || m.in_flight.get() == 1).await;
    worker.shutdown().await;
    let batch = ports.state.get_batch(f.batch.id).await.unwrap().unwrap();
    assert_eq!((batch.state, batch.done), (BatchState::Completed, 1));
}

pub async fn shutdown_requeues_after_grace(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let f = batch_with(&ports, small_options(), None, vec![b"a".to_vec()]).await;
    let short_grace = tirage_worker::WorkerSettings {
        shutdown_grace_ms: 100,
        ..h.settings()
    };
    // The job resizes for far longer than the grace period.
    let worker = start(
        ports.clone(),
        short_grace,
        Some(slow_engine(Duration::from_secs(5))),
    )
    .await;
    publish_all(&ports, &f).await;
    let m = worker.metrics.clone();
    wait_for("job in flight", WAIT, || m.in_flight.get() == 1).await;
    let t = std::time::Instant::now();
    worker.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stopped after the grace period"
    );
    assert_eq!(m.job_count(JobKind::Resize, JobOutcome::Requeued), 1);
    let rec = ports
        .state
        .get_photo(f.batch.id, f.photos[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, PhotoState::Queued);
    // Another worker picks the requeued job up.
    let second = start(ports.clone(), h.settings(), Some(fake_engine())).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!((batch.done, batch.failed), (1, 0));
    second.shutdown().await;
}

pub async fn http_port_serves_health_readiness_and_metrics(h: Arc<dyn Harness>) {
    let worker = start(h.ports(), h.settings(), Some(fake_engine())).await;
    let base = format!("http://127.0.0.1:{}", worker.port);
    let client = reqwest::Client::new();
    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "tirage_worker_jobs_in_flight",
        "tirage_worker_consumer_restarts_total",
        "tirage_worker_publish_to_start_seconds",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    worker.shutdown().await;
}

/// A truncated original, through the real engine: rendered, done, and never silently — its
/// record carries the warning.
pub async fn a_truncated_original_is_done_with_a_warning(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let whole = jpeg(640, 480);
    let cut = whole[..whole.len() * 6 / 10].to_vec();
    let f = batch_with(&ports, small_options(), None, vec![cut, whole]).await;
    let worker = start(ports.clone(), h.settings(), None).await;
    publish_all(&ports, &f).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!((batch.done, batch.failed), (2, 0), "{batch:?}");
    let record = |photo| photo_record(&ports, f.batch.id, photo);
    let truncated = record(f.photos[0]).await;
    assert_eq!(truncated.state, PhotoState::Done);
    assert_eq!(truncated.warnings, [PhotoWarning::Truncated]);
    assert!(record(f.photos[1]).await.warnings.is_empty());
    worker.shutdown().await;
}

/// Instantiates every suite test for a harness factory `$make` (an async fn returning
/// `Arc<dyn Harness>`).
#[macro_export]
macro_rules! suite {
    ($make:path) => {
        $crate::suite!(@each $make;
            happy_path,
            same_job_twice_counts_once,
            poison_image_fails_without_retry,
            store_outage_is_retried_then_done,
            a_spent_retry_budget_dead_letters,
            a_panic_fails_only_its_job,
            completion_event_and_webhook_once,
            callbacks_to_private_addresses_are_refused,
            silent_callback_receivers_hold_no_resize_slot,
            deleted_batch_is_dropped,
            a_stray_job_never_touches_a_finished_batch,
            an_original_over_the_byte_limit_fails_too_large_unread,
            a_photo_that_keeps_crashing_workers_fails_worker_crashed,
            lost_jobs_are_published_again,
            a_batch_behind_a_backlog_is_not_republished,
            a_scheduled_pass_repairs_with_no_worker_running,
            undone_effects_are_redriven,
            a_redrive_never_doubles_a_live_callback,
            expired_batches_leave_no_objects,
            a_stalled_reconciler_repairs_nothing_after_losing_its_lease,
            shutdown_finishes_in_flight_within_grace,
            shutdown_requeues_after_grace,
            http_port_serves_health_readiness_and_metrics,
            replayed_dead_letters_finish_their_batch,
            a_truncated_original_is_done_with_a_warning
        );
    };
    (@each $make:path; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let h = $make().await;
                $crate::suite::$name(h).await;
            }
        )*
    };
}
