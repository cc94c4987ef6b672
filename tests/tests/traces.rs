//! Traces across processes (issue #25), on the cluster as `deploy/local/cluster.sh` runs it
//! (nginx, one API replica, one worker, Redis, RabbitMQ, Garage), exporting to an OTLP/HTTP
//! receiver ([`tirage_testkit::otlp`]) with nothing but the standard `OTEL_*` variables:
//!
//! 1. Each uploaded photo is one trace across both processes: the API's server span of the
//!    upload, its producer span of the job, the worker's consumer span of that job (its
//!    parent is the producer span, carried in the AMQP message's `traceparent` header), and
//!    the job's steps under it (the original's download, the resize, each rendition's write,
//!    the outcome's record); the batch's finalisation continues the trace of the photo that
//!    completed it.
//! 2. A batch's callback carries the trace on to its receiver (`traceparent` naming the
//!    worker's client span of the POST, in the trace of the photo that completed the batch).
//! 3. A collector that accepts connections and never answers slows no request and no job.
//!
//! Needs what `cluster.sh up` needs. Environment: TIRAGE_TRACES_PORT (nginx's port, default
//! 18920; the processes use the ports after it).

// Test code: a failed step panics with its message, which is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tirage_e2e::api::Api;
use tirage_e2e::cluster::Cluster;
use tirage_e2e::photos;
use tirage_testkit::otlp::{
    KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER, Receiver, Span,
};
use tirage_testkit::receivers::{header, read_request};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const PHOTOS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_photo_is_one_trace_from_upload_to_rendition() {
    let receiver = Receiver::start().await;
    let hook = Hook::start().await;
    let port = std::env::var("TIRAGE_TRACES_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18920);
    let run_dir = std::env::temp_dir().join(format!("tirage-traces-{}", std::process::id()));
    let cluster = Cluster::up(
        port,
        run_dir,
        &[
            ("TIRAGE_API_REPLICAS", "1".into()),
            ("TIRAGE_WORKERS", "1".into()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            // Export every 200 ms rather than every 5 s: the test reads them soon after.
            ("OTEL_BSP_SCHEDULE_DELAY", "200".into()),
            // The callback receiver's address, which the SSRF guard otherwise refuses.
            (
                "TIRAGE__WORKER__CALLBACK_ALLOW_NETWORKS",
                "127.0.0.2/32".into(),
            ),
            (
                "TIRAGE__WORKER__CALLBACK_PORTS",
                format!("80,443,{}", hook.port),
            ),
        ],
    );
    let api = Api::new(cluster.base()).await;

    // 1. One trace per photo, across both processes.
    let batch = api.create_batch().await;
    let mut uploaded = Vec::new();
    for (name, bytes) in photos::corpus(PHOTOS) {
        let (id, _) = api.upload(&batch, &name, &bytes).await.unwrap();
        uploaded.push(id);
    }
    api.close(&batch).await;
    api.wait_completed(&batch, Duration::from_secs(60)).await;
    let renditions = rendition_counts(&api, &batch).await;
    let mut jobs = Vec::new();
    for id in &uploaded {
        let wanted = renditions[id.as_str()];
        let job = receiver
            .wait_for(Duration::from_secs(30), |spans| {
                photo_trace(spans, id, wanted)
            })
            .await;
        jobs.push(job);
    }
    let finalize = receiver
        .wait_for(Duration::from_secs(30), |spans| {
            spans
                .iter()
                .find(|s| {
                    s.name == "process finalize" && s.attribute("batch_id") == Some(batch.as_str())
                })
                .cloned()
        })
        .await;
    assert_eq!(finalize.service, "tirage-worker");
    assert_eq!(finalize.kind, KIND_CONSUMER);
    assert!(
        jobs.iter()
            .any(|j| j.span_id == finalize.parent_span_id && j.trace_id == finalize.trace_id),
        "the finalisation {finalize:?} continues no photo's trace: {jobs:?}"
    );

    // 2. The callback carries the trace on to its receiver: its `traceparent` names the
    //    worker's client span of the POST, in the trace of the photo that completed the batch.
    let batch = api
        .create_batch_with(serde_json::json!({"callback_url": hook.url()}))
        .await;
    let (name, bytes) = photos::corpus(1).remove(0);
    api.upload(&batch, &name, &bytes).await.unwrap();
    api.close(&batch).await;
    api.wait_completed(&batch, Duration::from_secs(60)).await;
    let traceparent = hook.traceparent(Duration::from_secs(30)).await;
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {traceparent}");
    let (trace_id, parent) = (parts[1].to_owned(), parts[2].to_owned());
    let post = receiver
        .wait_for(Duration::from_secs(30), |spans| {
            spans
                .iter()
                .find(|s| s.span_id == parent && s.trace_id == trace_id)
                .cloned()
        })
        .await;
    assert_eq!(
        (post.service.as_str(), post.name.as_str(), post.kind),
        ("tirage-worker", "post callback", KIND_CLIENT),
        "{post:?}"
    );
    receiver
        .wait_for(Duration::from_secs(30), |spans| {
            spans
                .iter()
                .find(|s| s.name == "process resize" && s.trace_id == trace_id)
                .map(drop)
        })
        .await;

    // 3. A collector that hangs: requests and jobs go on at their pace.
    receiver.silence();
    let exports_before = receiver.requests();
    let batch = api.create_batch().await;
    for (name, bytes) in photos::corpus(PHOTOS) {
        let started = Instant::now();
        api.upload(&batch, &name, &bytes).await.unwrap();
        // The exporter waits up to its 10 s timeout on the silent collector; a request that
        // waited on it would take that long.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "an upload took {:?} while the collector hangs",
            started.elapsed()
        );
    }
    api.close(&batch).await;
    api.wait_completed(&batch, Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while receiver.requests() == exports_before {
        assert!(
            Instant::now() < deadline,
            "no export reached the silent collector: the test proved nothing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(cluster);
}

/// How many renditions each photo of the batch has, by photo id.
async fn rendition_counts(api: &Api, batch: &str) -> std::collections::HashMap<String, usize> {
    api.photos(batch)
        .await
        .iter()
        .map(|p| {
            let id = p["id"].as_str().unwrap().to_string();
            let n = p["outputs"].as_array().map_or(0, Vec::len);
            (id, n)
        })
        .collect()
}

/// The worker's job span of `photo`, once its whole trace has arrived: the API's upload
/// request → its job's producer span → the worker's consumer span → the job's steps.
fn photo_trace(spans: &[Span], photo: &str, renditions: usize) -> Option<Span> {
    let job = spans
        .iter()
        .find(|s| s.name == "process resize" && s.attribute("photo_id") == Some(photo))?;
    assert_eq!(job.service, "tirage-worker", "{job:?}");
    assert_eq!(job.kind, KIND_CONSUMER, "{job:?}");
    let parent = |child: &Span| {
        spans
            .iter()
            .find(|s| s.span_id == child.parent_span_id && s.trace_id == child.trace_id)
    };
    let publish = parent(job)?;
    assert_eq!(
        (
            publish.service.as_str(),
            publish.name.as_str(),
            publish.kind
        ),
        ("tirage-api", "publish resize", KIND_PRODUCER),
        "the job's parent: {publish:?}"
    );
    assert_eq!(publish.attribute("photo_id"), Some(photo));
    let request = parent(publish)?;
    assert_eq!(request.service, "tirage-api", "{request:?}");
    assert_eq!(request.kind, KIND_SERVER, "{request:?}");
    assert!(
        request.name.starts_with("POST /v1/batches/"),
        "the upload request: {request:?}"
    );
    let steps: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id == job.span_id && s.trace_id == job.trace_id)
        .map(|s| s.name.as_str())
        .collect();
    let writes = steps.iter().filter(|n| **n == "write rendition").count();
    let complete = ["download original", "resize", "record outcome"]
        .iter()
        .all(|step| steps.contains(step))
        && writes == renditions;
    complete.then(|| job.clone())
}

/// A callback receiver on 127.0.0.2 that answers 200 and keeps the first request's
/// `traceparent` header.
struct Hook {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Hook {
    async fn start() -> Hook {
        let listener = TcpListener::bind(("127.0.0.2", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let keep = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let Some((head, _)) = read_request(&mut socket, &mut Vec::new()).await else {
                    continue;
                };
                let traceparent = header(&head, "traceparent").unwrap_or_default();
                keep.lock().unwrap().get_or_insert(traceparent);
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        Hook { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.2:{}/hook", self.port)
    }

    /// The first callback's `traceparent` (failing when it came without one).
    async fn traceparent(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(seen) = self.seen.lock().unwrap().clone() {
                assert!(!seen.is_empty(), "the callback came without a traceparent");
                return seen;
            }
            assert!(Instant::now() < deadline, "no callback within {within:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
