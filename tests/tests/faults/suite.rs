//! The suite's fixture: its own services, the cluster on them (supervised, workers under a
//! memory limit, a fast reconciler), a session, the photos; and the steps every fault shares:
//! a fresh batch uploaded and closed, waiting for a given progress, and the end checks
//! (completed, the exact split, every rendition, nothing left in the bucket once deleted).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tirage_e2e::api::Api;
use tirage_e2e::cluster::{Cluster, slowed_workers};
use tirage_e2e::photos;
use tirage_ports::ObjectStore;
use tirage_s3::S3ObjectStore;

use crate::poison;
use crate::services::{Garage, Rabbit, Redis};

/// nginx's port; the API replicas take the next ones, the workers' HTTP ports start 101 after.
pub const PORT: u16 = 19080;
pub const WORKER_1_HTTP_PORT: u16 = PORT + 101;
/// The workers' RLIMIT_DATA, MiB: an ordinary photo (≤ 1600 px here, ≤ 4K in general) fits
/// many times over, the poison photo's 768 MB of pixels does not.
pub const WORKER_DATA_LIMIT_MB: u64 = 640;
/// Upload lanes (parallel uploads), as `tirage upload --concurrency 4`.
const LANES: usize = 4;

pub struct Suite {
    // Fields drop in order: the cluster stops before the services it uses.
    pub cluster: Cluster,
    pub redis: Mutex<Redis>,
    pub rabbit: Mutex<Rabbit>,
    pub garage: Garage,
    pub api: Api,
    pub s3: S3ObjectStore,
    pub photos: Arc<Vec<(String, Vec<u8>)>>,
    pub cache: PathBuf,
    pub dir: PathBuf,
}

/// What a fault must end with.
pub struct Expect {
    pub total: usize,
    pub done: usize,
    pub failed: usize,
    /// How many photos the listing shows (a photo whose registration was lost cannot be).
    pub listed: std::ops::RangeInclusive<usize>,
    /// File name → failure code ("*": any code).
    pub failures: BTreeMap<String, String>,
    pub within: Duration,
}

impl Expect {
    pub fn all_done(n: usize) -> Expect {
        Expect {
            total: n,
            done: n,
            failed: 0,
            listed: n..=n,
            failures: BTreeMap::new(),
            within: Duration::from_secs(600),
        }
    }
}

/// One fault's figures, for the report.
#[derive(Debug, Clone)]
pub struct Figures {
    pub fault: String,
    pub photos: usize,
    /// Settled photos when the fault was injected, in % of the batch.
    pub injected_at: f64,
    /// From `close` to `completed`.
    pub close_to_completed: Duration,
    pub done: u64,
    pub failed: u64,
    pub renditions: usize,
    pub note: String,
}

impl Suite {
    pub async fn start(n: usize) -> Suite {
        let dir = std::env::temp_dir().join(format!("tirage-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fault-photos");
        let started = Instant::now();
        let d = dir.clone();
        let (redis, rabbit, garage) = tokio::task::spawn_blocking(move || {
            (
                Redis::start(&d.join("redis")),
                Rabbit::start(&d.join("rabbitmq")),
                Garage::start(&d.join("garage")),
            )
        })
        .await
        .unwrap();
        eprintln!(
            "suite services up in {:.1} s (state in {})",
            started.elapsed().as_secs_f64(),
            dir.display()
        );
        let c = cache.clone();
        let photos = tokio::task::spawn_blocking(move || photos::variants(n, &c))
            .await
            .unwrap();
        let s3 = S3ObjectStore::new(
            &serde_json::from_value(serde_json::json!({
                "endpoint": garage.get("TIRAGE__S3__ENDPOINT"),
                "region": garage.get("TIRAGE__S3__REGION"),
                "bucket": garage.get("TIRAGE__S3__BUCKET"),
                "access_key_id": garage.get("TIRAGE__S3__ACCESS_KEY_ID"),
                "secret_access_key": garage.get("TIRAGE__S3__SECRET_ACCESS_KEY"),
            }))
            .unwrap(),
        );
        let job_delay = std::env::var("TIRAGE_FAULTS_JOB_DELAY_MS").unwrap_or("300".into());
        let mut env: Vec<(&str, String)> = vec![
            ("TIRAGE_SUPERVISE", "1".into()),
            (
                "TIRAGE_WORKER_DATA_LIMIT_MB",
                WORKER_DATA_LIMIT_MB.to_string(),
            ),
            ("TIRAGE__REDIS__URL", redis.url()),
            ("TIRAGE__AMQP__URL", rabbit.url()),
            ("TIRAGE__WORKER__STALL_AFTER_MS", "5000".into()),
            ("TIRAGE__WORKER__RECONCILE_EVERY_MS", "1000".into()),
            // Up to the poison photo: the pixel check lets it reach the decoder.
            (
                "TIRAGE__WORKER__MAX_PIXELS",
                (poison::PIXELS + 1).to_string(),
            ),
        ];
        // Every job takes at least this long (the slowed test worker runs in place of
        // tirage-worker), so that a fault at 30 % lands mid-batch.
        env.extend(slowed_workers(
            env!("CARGO_BIN_EXE_tirage-worker-slowed"),
            job_delay,
        ));
        for (k, v) in &garage.env {
            if k.starts_with("TIRAGE__S3__") {
                env.push((k.as_str(), v.clone()));
            }
        }
        let cluster = Cluster::up(PORT, dir.join("cluster"), &env);
        let mut api = Api::new(cluster.base()).await;
        api.upload_retries = 8;
        Suite {
            cluster,
            redis: Mutex::new(redis),
            rabbit: Mutex::new(rabbit),
            garage,
            api,
            s3,
            photos: Arc::new(photos),
            cache,
            dir,
        }
    }

    /// A new batch with `photos` uploaded through nginx (four lanes) and closed.
    pub async fn fresh_batch(&self, photos: &[(String, Vec<u8>)]) -> String {
        let batch = self.api.create_batch().await;
        let next = AtomicUsize::new(0);
        let lanes = (0..LANES).map(|_| async {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((name, bytes)) = photos.get(i) else {
                    return;
                };
                self.api
                    .upload(&batch, name, bytes)
                    .await
                    .unwrap_or_else(|e| panic!("upload failed: {e}"));
            }
        });
        futures::future::join_all(lanes).await;
        self.api.close(&batch).await;
        batch
    }

    /// Waits until at least `fraction` of the batch's photos are settled; returns the batch
    /// then. Panics when the batch completes first (the fault would come too late).
    pub async fn wait_progress(&self, batch: &str, fraction: f64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Some(b) = self.api.try_batch(batch).await {
                let total = b["total"].as_u64().unwrap_or(0) as f64;
                let settled =
                    (b["done"].as_u64().unwrap_or(0) + b["failed"].as_u64().unwrap_or(0)) as f64;
                assert!(
                    b["state"] != "completed",
                    "batch {batch} completed before {:.0} %: the fault comes too late: {b}",
                    fraction * 100.0
                );
                if total > 0.0 && settled >= fraction * total {
                    return b;
                }
            }
            assert!(
                Instant::now() < deadline,
                "batch {batch} made no progress to {fraction}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The end checks of a fault, and its figures.
    pub async fn finish(
        &self,
        fault: &str,
        batch: &str,
        closed_at: Instant,
        injected: &Value,
        expect: Expect,
    ) -> Figures {
        let b = self.api.wait_completed(batch, expect.within).await;
        let close_to_completed = closed_at.elapsed();
        assert_eq!(b["total"], expect.total, "{fault}: total: {b}");
        assert_eq!(b["done"], expect.done, "{fault}: done: {b}");
        assert_eq!(b["failed"], expect.failed, "{fault}: failed: {b}");
        let renditions = self
            .api
            .check_photos(batch, expect.listed, &expect.failures)
            .await;
        self.api.delete(batch).await;
        let batch_id: uuid::Uuid = batch.parse().unwrap();
        let prefix = tirage_core::keys::batch_prefix(batch_id);
        let left = self.s3.delete_prefix(&prefix).await.unwrap();
        assert_eq!(left, 0, "{fault}: objects left under {prefix} after DELETE");
        let uploads = self.s3.incomplete_uploads(&prefix).await.unwrap();
        assert_eq!(uploads, 0, "{fault}: multipart uploads left under {prefix}");
        let pattern = format!("tirage:batch:{{{batch}}}*");
        let keys = tokio::task::block_in_place(|| {
            self.redis
                .lock()
                .unwrap()
                .cli(&["--scan", "--pattern", &pattern])
        });
        // What was charged under the batch stays, with a TTL, until the sweep that removes
        // its objects gives it back (its presigned PUTs outlive the DELETE): nothing else.
        let charges = format!("tirage:batch:{{{batch}}}:stored");
        let left: Vec<&str> = keys.lines().filter(|k| *k != charges).collect();
        assert!(
            left.is_empty(),
            "{fault}: Redis keys left after DELETE: {left:?}"
        );
        if keys.lines().any(|k| k == charges) {
            let ttl =
                tokio::task::block_in_place(|| self.redis.lock().unwrap().cli(&["pttl", &charges]));
            let ttl: i64 = ttl.trim().parse().unwrap_or(-1);
            assert!(ttl > 0, "{fault}: {charges} without expiry ({ttl})");
        }
        let total = injected["total"].as_u64().unwrap_or(1).max(1) as f64;
        let settled =
            injected["done"].as_u64().unwrap_or(0) + injected["failed"].as_u64().unwrap_or(0);
        Figures {
            fault: fault.to_string(),
            photos: expect.total,
            injected_at: settled as f64 * 100.0 / total,
            close_to_completed,
            done: b["done"].as_u64().unwrap_or(0),
            failed: b["failed"].as_u64().unwrap_or(0),
            renditions,
            note: String::new(),
        }
    }

    /// After each fault, whatever it did: every service runs and answers again, so that the
    /// next fault starts from a healthy cluster even when this one failed half-way.
    pub fn heal(&self) {
        let pid = self.garage.pid();
        if tirage_e2e::cluster::alive(pid) {
            tirage_e2e::cluster::send(pid, "CONT");
        } else {
            self.garage.restart();
        }
        if !crate::services::port_open(crate::services::REDIS_PORT) {
            self.redis.lock().unwrap().start_again();
        }
        if !crate::services::port_open(crate::services::AMQP_PORT) {
            self.rabbit.lock().unwrap().start_again();
        }
    }

    /// `worker_restarts` counts the restarts the supervisors logged so far.
    pub fn worker_restarts(&self) -> usize {
        (1..=2)
            .map(|i| {
                self.cluster
                    .log(&format!("worker-{i}"))
                    .matches("exited (status")
                    .count()
            })
            .sum()
    }
}
