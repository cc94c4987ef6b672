//! The whole cluster, end to end, as `deploy/local/cluster.sh` runs it: nginx in front of two
//! API replicas, two workers, Redis, RabbitMQ and Garage. Real photos go through nginx with an
//! HTTP client; every rendition is fetched back and checked. Then, with uploads in flight, one
//! API replica is stopped (no client may see a failure) and one worker is killed mid-job (the
//! batch must still complete with exact counts). `cluster.sh down` runs at the end, also when
//! the test fails.
//!
//! Needs what `cluster.sh up` needs: nginx, Redis, RabbitMQ and Garage installed or running,
//! and cargo to build the release binaries (TIRAGE_SKIP_BUILD=1 uses those already built).
//! It fails, naming the step, when one is missing.
//! Environment: TIRAGE_E2E_PORT (nginx's port, default 18480; the replicas use the ports
//! after it), TIRAGE_E2E_PHOTOS (how many photos per batch, default 12).

// Test code: a failed step panics with its message, which is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// The running cluster; dropping it runs `cluster.sh down`.
struct Cluster {
    port: u16,
    run_dir: PathBuf,
}

impl Cluster {
    fn command(&self, action: &str) -> Command {
        let mut cmd = Command::new(repo().join("deploy/local/cluster.sh"));
        cmd.arg(action)
            .env("TIRAGE_PORT", self.port.to_string())
            .env("TIRAGE_RUN_DIR", &self.run_dir)
            .env("TIRAGE_API_REPLICAS", "2")
            .env("TIRAGE_WORKERS", "2");
        cmd
    }

    fn up() -> Cluster {
        let port = std::env::var("TIRAGE_E2E_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(18480);
        let run_dir = std::env::temp_dir().join(format!("tirage-e2e-{}", std::process::id()));
        let cluster = Cluster { port, run_dir };
        let started = Instant::now();
        let status = cluster
            .command("up")
            // Every job takes at least this long, so that a worker killed while the batch
            // runs is certainly in the middle of jobs.
            .env("TIRAGE__WORKER__JOB_DELAY_MS", "150")
            .status()
            .expect("run deploy/local/cluster.sh");
        assert!(
            status.success(),
            "deploy/local/cluster.sh up failed ({status}); it printed why (nginx, Redis, \
             RabbitMQ, Garage or the build); logs in {}/logs",
            cluster.run_dir.display()
        );
        eprintln!("cluster up in {:.1} s", started.elapsed().as_secs_f64());
        cluster
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The pid `up` recorded for one of its processes (`api-1`, `worker-2`, ...).
    fn pid(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.run_dir.join(format!("{name}.pid")))
            .unwrap_or_else(|e| panic!("no pid file for {name}: {e}"));
        text.split_whitespace().next().expect("pid").to_string()
    }

    fn signal(&self, name: &str, signal: &str) {
        let pid = self.pid(name);
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.clone()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {name} (pid {pid})");
        eprintln!("sent SIG{signal} to {name} (pid {pid})");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        match self.command("down").status() {
            Ok(s) if s.success() => {}
            other => eprintln!("cluster.sh down: {other:?}"),
        }
    }
}

/// Real photographs: the benchmarks' reference corpus (bench/corpus, built from Debian
/// wallpaper packages by bench/build-corpus.sh when absent: 1600p to 4K JPEGs, landscape,
/// portrait and square), up to `n` of them.
fn photos(n: usize) -> Vec<(String, Vec<u8>)> {
    let corpus = repo().join("bench/corpus");
    let list = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.extension().is_some_and(|x| x == "jpg"));
        v.sort();
        v
    };
    if list(&corpus).len() < 4 {
        let status = Command::new(repo().join("bench/build-corpus.sh"))
            .status()
            .expect("run bench/build-corpus.sh");
        assert!(
            status.success(),
            "bench/build-corpus.sh failed: no photos to send"
        );
    }
    let files = list(&corpus);
    assert!(
        files.len() >= 4,
        "bench/corpus has only {} photos",
        files.len()
    );
    files
        .into_iter()
        .take(n)
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn new(base: String) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let resp = http
            .post(format!("{base}/v1/sessions"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "POST /v1/sessions");
        let body: Value = resp.json().await.unwrap();
        let token = body["token"].as_str().expect("token").to_string();
        Api { http, base, token }
    }

    async fn create_batch(&self) -> String {
        let resp = self
            .http
            .post(format!("{}/v1/batches", self.base))
            .bearer_auth(&self.token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "POST /v1/batches");
        let body: Value = resp.json().await.unwrap();
        body["id"].as_str().expect("batch id").to_string()
    }

    /// One multipart upload of one photo; returns the status, and the photo id on 202.
    /// Uploads one photo the way `tirage upload` does: one `Idempotency-Key` for the upload
    /// and its retries, retried on transport errors and 502/503/504 (a replica that stops
    /// closes its idle keep-alive connections; nginx may have picked one of them for a
    /// streamed body it cannot replay). Returns the photo id and how many retries it took.
    async fn upload(&self, batch: &str, name: &str, bytes: &[u8]) -> Result<(String, u32), String> {
        let key = uuid::Uuid::new_v4().to_string();
        let mut retries = 0;
        loop {
            let part = reqwest::multipart::Part::bytes(bytes.to_vec())
                .file_name(name.to_string())
                .mime_str("image/jpeg")
                .unwrap();
            let form = reqwest::multipart::Form::new().part("file", part);
            let sent = self
                .http
                .post(format!("{}/v1/batches/{batch}/photos", self.base))
                .bearer_auth(&self.token)
                .header("Idempotency-Key", &key)
                .multipart(form)
                .send()
                .await;
            let failure = match sent {
                Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                    let text = resp
                        .text()
                        .await
                        .map_err(|e| format!("{name}: body: {e}"))?;
                    let body: Value =
                        serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
                    let id = body["photos"][0]["id"].as_str().unwrap_or_default();
                    return Ok((id.to_string(), retries));
                }
                Ok(resp)
                    if matches!(
                        resp.status(),
                        StatusCode::BAD_GATEWAY
                            | StatusCode::SERVICE_UNAVAILABLE
                            | StatusCode::GATEWAY_TIMEOUT
                    ) =>
                {
                    format!("{name}: {}", resp.status())
                }
                Ok(resp) => {
                    let status = resp.status();
                    return Err(format!(
                        "{name}: {status} {}",
                        resp.text().await.unwrap_or_default()
                    ));
                }
                Err(e) => format!("{name}: transport error: {e}"),
            };
            retries += 1;
            if retries > 3 {
                return Err(format!("{failure} (after {retries} attempts)"));
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(retries))).await;
        }
    }

    async fn close(&self, batch: &str) {
        let resp = self
            .http
            .post(format!("{}/v1/batches/{batch}/close", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "POST close");
    }

    async fn batch(&self, batch: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/v1/batches/{batch}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET batch");
        resp.json().await.unwrap()
    }

    async fn wait_completed(&self, batch: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let b = self.batch(batch).await;
            if b["state"] == "completed" {
                return b;
            }
            assert!(
                Instant::now() < deadline,
                "batch {batch} not completed after {within:?}: {b}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every photo done, and every rendition fetched through nginx and checked: the image
    /// decodes, its size is what the listing says, its short side is the requested size
    /// (never upscaled) and its aspect ratio is the original's.
    async fn check_renditions(&self, batch: &str, expected: usize) {
        let resp = self
            .http
            .get(format!(
                "{}/v1/batches/{batch}/photos?limit=1000",
                self.base
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET photos");
        let body: Value = resp.json().await.unwrap();
        let list = body["photos"].as_array().expect("photos");
        assert_eq!(list.len(), expected, "photos listed");
        let mut fetched = 0;
        for p in list {
            assert_eq!(p["state"], "done", "photo {p}");
            let (w0, h0) = (p["width"].as_u64().unwrap(), p["height"].as_u64().unwrap());
            let outputs = p["outputs"].as_array().expect("outputs");
            assert_eq!(outputs.len(), 3, "three renditions (1080, 720, 360): {p}");
            for o in outputs {
                let url = o["url"].as_str().unwrap();
                let resp = self
                    .http
                    .get(format!("{}{url}", self.base))
                    .bearer_auth(&self.token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
                let ctype = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                assert_eq!(ctype, "image/jpeg", "content type of {url}");
                let bytes = resp.bytes().await.unwrap();
                assert_eq!(
                    bytes.len() as u64,
                    o["bytes"].as_u64().unwrap(),
                    "{url} bytes"
                );
                let (w, h) = image::ImageReader::new(std::io::Cursor::new(&bytes))
                    .with_guessed_format()
                    .unwrap()
                    .into_dimensions()
                    .unwrap_or_else(|e| panic!("{url} does not decode: {e}"));
                assert_eq!(
                    (u64::from(w), u64::from(h)),
                    (o["width"].as_u64().unwrap(), o["height"].as_u64().unwrap()),
                    "{url} dimensions"
                );
                let size = o["size"].as_u64().unwrap();
                let short = u64::from(w.min(h));
                assert_eq!(short, size.min(w0.min(h0)), "{url}: short side");
                // Same aspect ratio, up to the rounding of one pixel. EXIF orientation may
                // have turned the photo: compare with the original either way round.
                let (w, h) = (u64::from(w), u64::from(h));
                let close = |a: u64, b: u64| a.abs_diff(b) <= w0.max(h0);
                assert!(
                    close(w * h0, h * w0) || close(w * w0, h * h0),
                    "{url}: {w}x{h} is not the shape of {w0}x{h0}"
                );
                fetched += 1;
            }
        }
        eprintln!("batch {batch}: {expected} photos, {fetched} renditions checked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_end_to_end() {
    let n: usize = std::env::var("TIRAGE_E2E_PHOTOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let photos = Arc::new(photos(n));
    let cluster = Cluster::up();
    let api = Arc::new(Api::new(cluster.base()).await);

    // 1. A batch of real photos through nginx; every rendition checked.
    let started = Instant::now();
    let batch = api.create_batch().await;
    for (name, bytes) in photos.iter() {
        api.upload(&batch, name, bytes).await.unwrap();
    }
    api.close(&batch).await;
    let b = api.wait_completed(&batch, Duration::from_secs(300)).await;
    assert_eq!(b["total"], photos.len(), "{b}");
    assert_eq!(b["done"], photos.len(), "{b}");
    assert_eq!(b["failed"], 0, "{b}");
    eprintln!(
        "batch of {} photos completed in {:.1} s",
        photos.len(),
        started.elapsed().as_secs_f64()
    );
    api.check_renditions(&batch, photos.len()).await;

    // 2. Uploads in flight on both replicas; one replica is stopped (SIGTERM: it drains its
    // in-flight requests, nginx sends the rest to the other one). No upload may fail.
    let batch = api.create_batch().await;
    let uploads = photos.len() * 2;
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for lane in 0..4 {
        let (api, photos, batch, done) = (api.clone(), photos.clone(), batch.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for i in (lane..uploads).step_by(4) {
                let (name, bytes) = &photos[i % photos.len()];
                results.push(api.upload(&batch, name, bytes).await);
                done.fetch_add(1, Ordering::SeqCst);
            }
            results
        }));
    }
    while done.load(Ordering::SeqCst) < 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.signal("api-1", "TERM");
    let mut failures = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let mut retried = 0;
    for t in tasks {
        for r in t.await.unwrap() {
            match r {
                Ok((id, retries)) => {
                    assert!(ids.insert(id), "a photo id came back twice");
                    retried += retries;
                }
                Err(e) => failures.push(e),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "uploads failed while an API replica stopped: {failures:#?}"
    );
    assert_eq!(ids.len(), uploads);
    eprintln!("uploads retried while api-1 stopped: {retried}");
    // Retries registered nothing twice: exactly one photo per upload.
    assert_eq!(api.batch(&batch).await["total"], uploads);
    api.close(&batch).await;

    // 3. One worker killed (SIGKILL) in the middle of the batch: its unacked jobs are
    // redelivered to the other worker, and no photo is counted twice.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let b = api.batch(&batch).await;
        let done_now = b["done"].as_u64().unwrap();
        if done_now >= 1 {
            assert!(
                done_now < uploads as u64,
                "the batch finished before a worker could be killed: {b}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no progress on batch {batch}: {b}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.signal("worker-1", "KILL");
    let b = api.wait_completed(&batch, Duration::from_secs(300)).await;
    assert_eq!(b["total"], uploads, "{b}");
    assert_eq!(b["done"], uploads, "{b}");
    assert_eq!(b["failed"], 0, "{b}");
    api.check_renditions(&batch, uploads).await;

    // What the client never saw, the proxy did: each upload answered exactly once.
    let log = std::fs::read_to_string(cluster.run_dir.join("logs/nginx.access.log")).unwrap();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for line in log
        .lines()
        .filter(|l| l.contains("/photos\"") && l.contains("\"POST\""))
    {
        let v: Value = serde_json::from_str(line).unwrap();
        *statuses.entry(v["status"].to_string()).or_default() += 1;
    }
    eprintln!("uploads by status at nginx: {statuses:?}");
    assert_eq!(statuses.get("202").copied(), Some(photos.len() + uploads));
    // The kill mattered: the surviving worker finished jobs the killed one had taken.
    let survivor = std::fs::read_to_string(cluster.run_dir.join("logs/worker-2.log")).unwrap();
    let redone = survivor
        .lines()
        .filter(|l| l.contains("job settled") && l.contains("\"redelivered\":true"))
        .count();
    eprintln!("jobs redelivered to worker-2 after worker-1 was killed: {redone}");
    assert!(redone >= 1, "worker-1 was killed with no job in flight");
    drop(cluster);
}
