//! The suite's finalisation tests: the `batch.completed` event and the signed callback, each
//! once per batch, and the SSRF guard on callbacks.

use std::sync::Arc;
use std::time::Duration;
use tirage_ports::TraceContext;

use tirage_core::BatchCompleted;
use tirage_ports::WorkItem;
use tirage_testkit::SilentReceiver;
use tirage_worker::signature::DEFAULT_TOLERANCE_SECS;
use tirage_worker::{SIGNATURE_HEADER, verify};

use crate::common::*;

pub async fn completion_event_and_webhook_once(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let mut events = h.subscribe_events().await;
    // The first callback attempt gets a 500: it must be retried, then delivered once.
    let hook = hook(1).await;
    let f = batch_with(
        &ports,
        small_options(),
        Some(hook.url.clone()),
        vec![b"a".to_vec(), b"b".to_vec()],
    )
    .await;
    let worker = start(ports.clone(), h.settings(), Some(fake_engine())).await;
    publish_all(&ports, &f).await;
    wait_completed(&ports, f.batch.id, WAIT).await;
    // Extra finalisations of the completed batch, as redelivered jobs would publish: harmless.
    for _ in 0..2 {
        ports
            .queue
            .publish(
                &WorkItem::FinalizeBatch {
                    batch_id: f.batch.id,
                    redrive: false,
                },
                &TraceContext::none(),
            )
            .await
            .unwrap();
    }
    let m = worker.metrics.clone();
    wait_for("3 finalisations", WAIT, || {
        m.job_count(JobKind::Finalize, JobOutcome::Done)
            + m.job_count(JobKind::Finalize, JobOutcome::Duplicate)
            == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = hook.requests.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        2,
        "one failed attempt, one delivery: {requests:?}"
    );
    for (headers, body) in &requests {
        let sig = header(headers, SIGNATURE_HEADER).expect("signed");
        let now = chrono::Utc::now().timestamp();
        verify(SECRET.as_bytes(), sig, body, now, DEFAULT_TOLERANCE_SECS)
            .unwrap_or_else(|e| panic!("{sig}: {e}"));
        assert!(sig.starts_with("t="), "{sig}");
        assert_eq!(header(headers, "content-type"), Some("application/json"));
        let ev: BatchCompleted = serde_json::from_slice(body).unwrap();
        assert_eq!(ev.event, "batch.completed");
        assert_eq!(
            (ev.batch_id, ev.total, ev.done, ev.failed),
            (f.batch.id, 2, 2, 0)
        );
    }
    assert_eq!(m.callback_count(CallbackOutcome::Delivered), 1);
    let got = for_batch(
        events_within(&mut *events, Duration::from_secs(2)).await,
        f.batch.id,
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        serde_json::to_vec(&got[0]).unwrap(),
        requests[1].1,
        "same JSON to both"
    );
    worker.shutdown().await;
}

pub async fn callbacks_to_private_addresses_are_refused(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let hook = hook(0).await;
    let f = batch_with(
        &ports,
        small_options(),
        Some(hook.url.clone()),
        vec![b"a".to_vec()],
    )
    .await;
    let settings = tirage_worker::WorkerSettings {
        allow_private_callbacks: false,
        ..h.settings()
    };
    let worker = start(ports.clone(), settings, Some(fake_engine())).await;
    publish_all(&ports, &f).await;
    wait_completed(&ports, f.batch.id, WAIT).await;
    let m = worker.metrics.clone();
    wait_for("callback refused", WAIT, || {
        m.callback_count(CallbackOutcome::Refused) == 1
    })
    .await;
    assert!(
        hook.requests.lock().unwrap().is_empty(),
        "nothing reached 127.0.0.1"
    );
    worker.shutdown().await;
}

/// Callback receivers that accept connections and never answer hold effect slots only, at
/// most `callback_per_host` of them: another batch's photos are resized meanwhile (with the
/// callbacks inside the finalisation on the resize queue, every resize slot waited out the
/// 30 s timeout), and the silent batches' events go out without waiting for their callbacks.
pub async fn silent_callback_receivers_hold_no_resize_slot(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let silent = SilentReceiver::start("127.0.0.1").await;
    let settings = tirage_worker::WorkerSettings {
        callback_timeout_ms: 30_000,
        callback_retry_for_ms: 120_000,
        effects_concurrency: 4,
        callback_per_host: 2,
        ..h.settings()
    };
    let silent_batches = 12;
    for _ in 0..silent_batches {
        let f = batch_with(&ports, small_options(), Some(silent.url.clone()), vec![]).await;
        // An empty batch is completed when closed; the API then hands its finalisation off.
        let finalize = WorkItem::FinalizeBatch {
            batch_id: f.batch.id,
            redrive: false,
        };
        ports
            .queue
            .publish(&finalize, &TraceContext::none())
            .await
            .unwrap();
    }
    let worker = start(ports.clone(), settings, Some(fake_engine())).await;
    let m = worker.metrics.clone();
    wait_for("the silent receiver's connections", WAIT, || {
        silent.accepted() >= 2
    })
    .await;
    let photos = (0..8).map(|i| format!("photo {i}").into_bytes()).collect();
    let f = batch_with(&ports, small_options(), None, photos).await;
    publish_all(&ports, &f).await;
    let done = wait_completed(&ports, f.batch.id, Duration::from_secs(15)).await;
    assert_eq!((done.done, done.failed), (8, 0));
    wait_for("every silent batch's event", WAIT, || {
        m.events_published.get() >= silent_batches
    })
    .await;
    wait_for("callbacks deferred while their host is busy", WAIT, || {
        m.callback_count(CallbackOutcome::Deferred) > 0
    })
    .await;
    assert_eq!(
        silent.accepted(),
        2,
        "never more than callback_per_host callbacks to one host at once"
    );
    for outcome in [
        CallbackOutcome::Delivered,
        CallbackOutcome::Refused,
        CallbackOutcome::GaveUp,
    ] {
        assert_eq!(m.callback_count(outcome), 0, "{outcome:?}");
    }
    worker.shutdown().await;
}
