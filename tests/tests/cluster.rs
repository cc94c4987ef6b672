//! The whole cluster, end to end, as `deploy/local/cluster.sh` runs it: nginx in front of two
//! API replicas, two workers, Redis, RabbitMQ and Garage. Real photos go through nginx with an
//! HTTP client; every rendition is fetched back and checked. Then, with uploads in flight, one
//! API replica is stopped (no client may see a failure) and one worker is killed mid-job (the
//! batch must still complete with exact counts; the workers are this crate's test binary
//! `tirage-worker-slowed`, every resize 150 ms longer, so that the kill surely finds jobs in
//! flight). After the first batch, deploy/validate_dashboard.py checks that every series the
//! Grafana dashboard (deploy/grafana/tirage.json) reads is in some API replica's or worker's
//! own /metrics, and `tirage-worker admin batch` (through `cluster.sh admin`) reports the
//! batch as the API does. Last, the surviving worker is drained (`admin drain`): it answers
//! 503 `draining` and takes no new job. `cluster.sh down` runs at the end, also when the
//! test fails.
//!
//! Needs what `cluster.sh up` needs: nginx, Redis, RabbitMQ and Garage installed or running,
//! cargo to build the release binaries (TIRAGE_SKIP_BUILD=1 uses those already built), and
//! python3 for the dashboard check.
//! It fails, naming the step, when one is missing.
//! Environment: TIRAGE_E2E_PORT (nginx's port, default 18480; the replicas use the ports
//! after it), TIRAGE_E2E_PHOTOS (how many photos per batch, default 12).

// Test code: a failed step panics with its message, which is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tirage_e2e::api::Api;
use tirage_e2e::cluster::{Cluster, slowed_workers};
use tirage_e2e::{photos, repo};

fn cluster_up() -> Cluster {
    let port = std::env::var("TIRAGE_E2E_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18480);
    let run_dir = std::env::temp_dir().join(format!("tirage-e2e-{}", std::process::id()));
    // Every job takes at least this long (the slowed test worker), so that a worker killed
    // while the batch runs is certainly in the middle of jobs.
    Cluster::up(
        port,
        run_dir,
        &slowed_workers(env!("CARGO_BIN_EXE_tirage-worker-slowed"), 150),
    )
}

/// The Grafana dashboard reads only series the processes export: every API replica's and
/// worker's own /metrics (nginx proxies none), saved under the run folder's `metrics/`, given to
/// deploy/validate_dashboard.py. A series the dashboard may find absent after a normal batch
/// (a labelled counter before its first event) is listed, with its reason, in its panel's
/// description; the validator prints which ones were.
async fn check_dashboard(cluster: &Cluster) {
    let dir = cluster.run_dir.join("metrics");
    std::fs::create_dir_all(&dir).unwrap();
    let http = reqwest::Client::new();
    let mut dumps = Vec::new();
    for (name, base) in cluster.processes() {
        let url = format!("{base}/metrics");
        let res = http
            .get(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url} ({name}): {e}"));
        assert!(
            res.status().is_success(),
            "GET {url} ({name}): {}",
            res.status()
        );
        let path = dir.join(format!("{name}.prom"));
        std::fs::write(&path, res.text().await.unwrap()).unwrap();
        dumps.push(path);
    }
    let out = Command::new("python3")
        .current_dir(repo())
        .args([
            "deploy/validate_dashboard.py",
            "deploy/grafana/tirage.json",
            "--metrics",
        ])
        .args(&dumps)
        .output()
        .expect("run python3 deploy/validate_dashboard.py");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "deploy/validate_dashboard.py refuses deploy/grafana/tirage.json against the \
         /metrics dumps in {} ({}):\n{report}",
        dir.display(),
        out.status
    );
    eprintln!("{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_end_to_end() {
    let n: usize = std::env::var("TIRAGE_E2E_PHOTOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let photos = Arc::new(photos::corpus(n));
    let cluster = cluster_up();
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
    api.check_photos(&batch, photos.len()..=photos.len(), &BTreeMap::new())
        .await;
    // Every process is up and has served a whole batch: its counters have values.
    check_dashboard(&cluster).await;
    check_admin_report(&cluster, &batch, photos.len());

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
    api.check_photos(&batch, uploads..=uploads, &BTreeMap::new())
        .await;

    // What the client never saw, the proxy did: each upload answered exactly once.
    let log = cluster.log("nginx.access");
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
    let survivor = cluster.log("worker-2");
    let redone = survivor
        .lines()
        .filter(|l| l.contains("job settled") && l.contains("\"redelivered\":true"))
        .count();
    eprintln!("jobs redelivered to worker-2 after worker-1 was killed: {redone}");
    assert!(redone >= 1, "worker-1 was killed with no job in flight");

    // 4. The last worker drained (`tirage-worker admin drain`): it answers 503 `draining`,
    // keeps running, and takes no new job.
    drain_the_last_worker(&cluster, &api, &photos[0]).await;
    drop(cluster);
}

/// `cluster.sh admin …` (`tirage-worker admin …` with the cluster's settings); its JSON.
fn admin(cluster: &Cluster, args: &[&str]) -> Value {
    let out = cluster.command("admin").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What an operator sees of a batch that completed: every photo done, no crashed run, its
/// event out, and no dead letter of it.
fn check_admin_report(cluster: &Cluster, batch: &str, photos: usize) {
    let report = admin(cluster, &["batch", batch]);
    assert_eq!(report["batch"]["state"], "completed", "{report}");
    let listed = report["photos"].as_array().unwrap();
    assert_eq!(listed.len(), photos, "{report}");
    for photo in listed {
        assert_eq!(photo["state"], "done", "{photo}");
        assert_eq!(photo["crashed_runs"], 0, "{photo}");
    }
    let effects = report["effects"].as_array().unwrap();
    assert!(
        effects.iter().any(|e| e[0] == "event" && e[1] == true),
        "{report}"
    );
    assert_eq!(
        admin(cluster, &["dead-letters", "--batch", batch]),
        Value::Array(vec![])
    );
    let unknown = cluster
        .command("admin")
        .args(["batch", &uuid::Uuid::new_v4().to_string()])
        .output()
        .unwrap();
    assert!(!unknown.status.success(), "an unknown batch is an error");
}

async fn drain_the_last_worker(cluster: &Cluster, api: &Api, photo: &(String, Vec<u8>)) {
    let pid = cluster.live_pid("worker-2", Duration::from_secs(10));
    let answer = admin(cluster, &["drain", &pid.to_string()]);
    assert_eq!(answer["drain"], "requested", "{answer}");
    let (_, base) = cluster
        .processes()
        .into_iter()
        .find(|(name, _)| name == "worker-2")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = reqwest::get(format!("{base}/readyz")).await.unwrap();
        if res.status() == 503 {
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "draining", "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker-2 never reported draining"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let batch = api.create_batch().await;
    api.upload(&batch, &photo.0, &photo.1).await.unwrap();
    api.close(&batch).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        api.batch(&batch).await["done"],
        0,
        "a drained worker took a job"
    );
    assert!(
        tirage_e2e::cluster::alive(pid),
        "a drained worker keeps running"
    );
}
