//! What every worker test shares: a harness over one set of dependencies (embedded or the
//! real services), batch fixtures, fake engines and fault-injecting wrappers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hook;

pub use hook::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tirage_ports::TraceContext;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use secrecy::SecretString;
use tirage_core::{
    Batch, BatchCompleted, BatchOptions, BatchState, OutputFormat, PhotoRecord, ResizeJob, keys,
};
use tirage_engine::{EngineError, Limits, Rendition as EngineRendition, Resized};
use tirage_ports::{ObjectBody, ObjectStore, ObjectStoreError, WorkItem};
use tirage_runtime::config;
use tirage_testkit::intercepted::{Intercepted, ObjectHooks};
pub use tirage_worker::{CallbackOutcome, JobKind, JobOutcome, Repair};
use tirage_worker::{Metrics, Ports, ResizeFn, Worker, WorkerSettings};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A message that ended in the dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub item: Option<WorkItem>,
    pub reason: String,
}

/// One set of dependencies plus the test-only views a test needs of them.
#[async_trait]
pub trait Harness: Send + Sync {
    fn ports(&self) -> Ports;
    /// Dead letters that arrived so far (taken: each is seen once).
    async fn take_dead_letters(&self) -> Vec<DeadLetter>;
    /// Starts listening to `batch.completed` events; events published before are not seen.
    async fn subscribe_events(&self) -> Box<dyn EventSource>;
    /// Settings for a worker on these dependencies, with fast retries.
    fn settings(&self) -> WorkerSettings {
        test_settings()
    }
}

#[async_trait]
pub trait EventSource: Send {
    /// The next event's payload, or `None` when nothing arrives within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Vec<u8>>;
}

pub const SECRET: &str = "test-callback-secret";

/// How long a suite test waits for anything.
pub const WAIT: Duration = Duration::from_secs(60);

/// Every event that arrives until none has for `wait`.
pub async fn events_within(src: &mut dyn EventSource, wait: Duration) -> Vec<BatchCompleted> {
    let mut out = Vec::new();
    while let Some(p) = src.next(wait).await {
        out.push(serde_json::from_slice(&p).expect("event is BatchCompleted JSON"));
    }
    out
}

/// Events for one batch only: on the real broker other tests' events share the exchange.
pub fn for_batch(events: Vec<BatchCompleted>, id: uuid::Uuid) -> Vec<BatchCompleted> {
    events.into_iter().filter(|e| e.batch_id == id).collect()
}

/// The compiled-in `[worker]` defaults of `config/default.toml`.
pub fn default_settings() -> WorkerSettings {
    let layers = config::Layers::defaults_only();
    WorkerSettings::from_layers(&layers).expect("the default [worker] and [limits] sections")
}

pub fn test_settings() -> WorkerSettings {
    WorkerSettings {
        host: "127.0.0.1".into(),
        port: 0,
        concurrency: 2,
        retry_for_ms: 2_000,
        retry_base_ms: 20,
        retry_cap_ms: 200,
        io_timeout_ms: 10_000,
        shutdown_grace_ms: 5_000,
        reconnect_base_ms: 20,
        reconnect_cap_ms: 500,
        callback_secret: SecretString::from(SECRET),
        allow_private_callbacks: true,
        // Test receivers listen on ephemeral ports.
        callback_ports: vec![],
        callback_timeout_ms: 2_000,
        callback_retry_for_ms: 5_000,
        ..default_settings()
    }
}

/// A worker running in this process.
pub struct Running {
    pub port: u16,
    pub metrics: Metrics,
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<(), tirage_worker::WorkerError>>,
}

impl Running {
    pub async fn shutdown(self) {
        self.stop.cancel();
        let r = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("worker stops within 30 s")
            .expect("worker task does not panic");
        r.expect("worker exits cleanly");
    }
}

pub async fn start(ports: Ports, settings: WorkerSettings, resizer: Option<ResizeFn>) -> Running {
    let mut worker = Worker::from_ports(settings, ports)
        .await
        .expect("worker builds");
    if let Some(r) = resizer {
        worker = worker.with_resizer(r);
    }
    let port = worker.port();
    let metrics = worker.metrics();
    let stop = worker.stop_token();
    let task = tokio::spawn(worker.run_until_stopped());
    Running {
        port,
        metrics,
        stop,
        task,
    }
}

/// A batch with photos whose originals are stored, not yet published.
pub struct Fixture {
    pub batch: Batch,
    pub photos: Vec<Uuid>,
}

pub fn new_batch(options: BatchOptions, callback_url: Option<String>) -> Batch {
    let now = Utc::now();
    Batch {
        id: Uuid::new_v4(),
        owner: format!("test-{}", Uuid::new_v4()),
        state: BatchState::Open,
        options,
        callback_url,
        total: 0,
        done: 0,
        failed: 0,
        created_at: now,
        expires_at: now + chrono::Duration::hours(1),
    }
}

/// Creates a batch holding one photo per original, stores the originals and closes it.
pub async fn batch_with(
    ports: &Ports,
    options: BatchOptions,
    callback_url: Option<String>,
    originals: Vec<Vec<u8>>,
) -> Fixture {
    let batch = new_batch(options, callback_url);
    ports
        .state
        .create_batch(&batch, tirage_ports::Cap::Unlimited)
        .await
        .expect("create batch");
    let photos: Vec<Uuid> = originals.iter().map(|_| Uuid::new_v4()).collect();
    let records: Vec<PhotoRecord> = photos
        .iter()
        .enumerate()
        .map(|(i, id)| PhotoRecord::queued(*id, format!("photo-{i}.jpg")))
        .collect();
    ports
        .state
        .add_photos(batch.id, &records, 10_000)
        .await
        .expect("add photos");
    for (id, data) in photos.iter().zip(originals) {
        ports
            .objects
            .put(
                &keys::original_key(batch.id, *id),
                Bytes::from(data),
                "image/jpeg",
            )
            .await
            .expect("store original");
    }
    ports
        .state
        .close_batch(batch.id)
        .await
        .expect("close batch");
    let batch = ports
        .state
        .get_batch(batch.id)
        .await
        .expect("get batch")
        .expect("batch exists");
    Fixture { batch, photos }
}

pub fn job(f: &Fixture, photo: Uuid) -> WorkItem {
    WorkItem::Resize(ResizeJob::new(
        &f.batch,
        photo,
        Some(format!("req-{photo}")),
        chrono::Utc::now(),
    ))
}

pub async fn publish_all(ports: &Ports, f: &Fixture) {
    for p in &f.photos {
        ports
            .queue
            .publish(&job(f, *p), &TraceContext::none())
            .await
            .expect("publish job");
    }
}

/// Waits until the batch is completed and returns it.
/// The photo's record, which must exist.
pub async fn photo_record(ports: &Ports, batch_id: Uuid, photo_id: Uuid) -> PhotoRecord {
    ports
        .state
        .get_photo(batch_id, photo_id)
        .await
        .unwrap()
        .expect("photo recorded")
}

pub async fn wait_completed(ports: &Ports, batch_id: Uuid, within: Duration) -> Batch {
    let deadline = Instant::now() + within;
    loop {
        let batch = ports
            .state
            .get_batch(batch_id)
            .await
            .expect("get batch")
            .expect("batch exists");
        if batch.state == BatchState::Completed {
            return batch;
        }
        assert!(
            Instant::now() < deadline,
            "batch not completed within {within:?}: {batch:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `cond` holds on the metrics.
pub async fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A real photo-like JPEG (gradients and noise, so the encoder has work to do).
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed & 0x1f) as u32;
        image::Rgb([
            ((x * 255 / width.max(1)) + n).min(255) as u8,
            ((y * 255 / height.max(1)) + n).min(255) as u8,
            (((x + y) * 255 / (width + height).max(1)) + n).min(255) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode test JPEG");
    out.into_inner()
}

/// An engine stand-in that needs no codec: renditions are the size as text, dimensions the
/// short side scaled from a 4:3 source. Lets the delivery tests run whatever the engine's
/// state.
pub fn fake_engine() -> ResizeFn {
    Arc::new(|input: &[u8], options: &BatchOptions, _limits: &Limits| {
        if input.starts_with(b"POISON") {
            return Err(EngineError::CorruptImage("poison".into()));
        }
        Ok(Resized {
            width: 4000,
            height: 3000,
            renditions: options
                .sizes
                .iter()
                .map(|&s| EngineRendition {
                    size: s,
                    width: s * 4 / 3,
                    height: s,
                    format: options.format,
                    data: format!("rendition {s}").into_bytes(),
                })
                .collect(),
            warnings: Vec::new(),
        })
    })
}

/// [`fake_engine`], slow: every resize first sleeps `delay` on the CPU pool's blocking
/// thread (where the worker runs the engine), as a large photo would hold it. Keeps a job in
/// flight for as long as a test needs, with no setting of the worker's own.
pub fn slow_engine(delay: Duration) -> ResizeFn {
    let fake = fake_engine();
    Arc::new(
        move |input: &[u8], options: &BatchOptions, limits: &Limits| {
            std::thread::sleep(delay);
            fake(input, options, limits)
        },
    )
}

/// An engine stand-in that panics.
pub fn panicking_engine() -> ResizeFn {
    Arc::new(|input: &[u8], options: &BatchOptions, limits: &Limits| {
        if input.starts_with(b"PANIC") {
            panic!("engine bug triggered by test");
        }
        fake_engine()(input, options, limits)
    })
}

pub fn small_options() -> BatchOptions {
    BatchOptions {
        sizes: vec![720, 360],
        format: OutputFormat::Jpeg,
        quality: 80,
        ..BatchOptions::default()
    }
}

/// The hooks of an object store that fails the first `failures` calls of `get` and `put`
/// with `Unavailable`, as S3 does while it restarts, then behaves. A `get_stream` fails at
/// its body's first read, so a caller that never reads the body never trips one.
pub struct Flaky {
    pub remaining: Arc<AtomicU32>,
    pub failed: Arc<AtomicU32>,
}

/// An object store over an inner one that fails like [`Flaky`].
pub type FlakyStore = Intercepted<Flaky>;

/// `inner`, failing its first `failures` calls of `get` and `put` (and first reads).
pub fn flaky_store(inner: Arc<dyn ObjectStore>, failures: u32) -> FlakyStore {
    Intercepted {
        inner,
        hooks: Flaky {
            remaining: Arc::new(AtomicU32::new(failures)),
            failed: Arc::new(AtomicU32::new(0)),
        },
    }
}

/// Fails (and counts the failure) while injected failures remain.
fn trip(remaining: &AtomicU32, failed: &AtomicU32) -> Result<(), ObjectStoreError> {
    let left = remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if left.is_ok() {
        failed.fetch_add(1, Ordering::SeqCst);
        return Err(ObjectStoreError::Unavailable("injected outage".into()));
    }
    Ok(())
}

#[async_trait]
impl ObjectHooks for Flaky {
    async fn before_put(&self, _key: &str) -> Result<(), ObjectStoreError> {
        trip(&self.remaining, &self.failed)
    }
    async fn before_get(&self, _key: &str) -> Result<(), ObjectStoreError> {
        trip(&self.remaining, &self.failed)
    }
    fn map_body(&self, body: ObjectBody) -> ObjectBody {
        let (remaining, failed) = (self.remaining.clone(), self.failed.clone());
        let first_read = futures::stream::once(async move {
            trip(&remaining, &failed)
                .map(|()| Bytes::new())
                .map_err(|e| std::io::Error::other(e.to_string()))
        });
        ObjectBody {
            size: body.size,
            stream: Box::pin(first_read.chain(body.stream)),
        }
    }
}
