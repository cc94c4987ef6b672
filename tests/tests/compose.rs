//! docker-compose.yml, run for real: `scripts/compose.sh up` brings the compose project up in
//! containers with podman (local images, the same compose file: nginx, two API replicas, two
//! workers, Redis with AOF, RabbitMQ, Garage and its init, Prometheus), and this test drives it through
//! nginx's published port as a user would:
//! 1. a batch of real photos, every rendition fetched back and checked;
//! 2. a batch uploaded on four connections while one API container and one worker container
//!    crash (SIGKILL to the container's init, as an OOM kill or a crash does): compose's
//!    restart policy brings both back, no upload fails, and the batch completes with exact
//!    counts;
//! 3. `up --scale worker=3`: three worker containers consume the queue and each one's jobs
//!    show in its log; the compose file's Prometheus (Debian's, in the local image) has found
//!    every API replica and all three workers through the network's DNS and scrapes them and
//!    RabbitMQ's queues, has loaded Tirage's alert rules, and holds the workers' job counts;
//! 4. `scripts/compose.sh down` leaves no container, network or volume of the project.
//!
//! Needs what `scripts/compose.sh up` needs (it installs podman and podman-compose when
//! missing, builds the local images, and uses the tirage-api and tirage-worker binaries of
//! TIRAGE_BUILD_PROFILE, building them unless TIRAGE_SKIP_BUILD=1); fails, naming the step,
//! when something is missing. The worker image runs this crate's test binary
//! `tirage-worker-slowed` in place of tirage-worker (compose.sh's TIRAGE_WORKER_BIN): every
//! resize first waits JOB_DELAY_MS. Environment: TIRAGE_COMPOSE_E2E_PORT (nginx's published
//! port, default 18490; Garage's S3 port is the next one, Prometheus's the one after).

// Test code: a failed step panics with its message, which is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tirage_e2e::api::Api;
use tirage_e2e::{photos, repo};

const PROJECT: &str = "tirage-e2e";
/// Every job waits this long first (in the slowed test worker), so that a worker crashed
/// mid-batch has jobs in flight.
const JOB_DELAY_MS: &str = "300";

fn podman(args: &[&str]) -> String {
    let out = Command::new("podman")
        .args(args)
        .env(
            "CONTAINERS_CONF",
            repo().join("deploy/podman/containers.conf"),
        )
        .output()
        .unwrap_or_else(|e| panic!("podman is not installed or not runnable ({e})"));
    assert!(
        out.status.success(),
        "podman {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One container as `podman inspect` sees it.
#[derive(Debug)]
struct Container {
    name: String,
    status: String,
    restarts: u64,
    pid: u64,
}

/// The compose project; dropping it runs `scripts/compose.sh down`.
struct Project {
    port: u16,
    callback_secret: String,
    down: bool,
}

impl Project {
    fn script(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(repo().join("scripts/compose.sh"));
        cmd.args(args)
            .env("COMPOSE_PROJECT_NAME", PROJECT)
            .env("TIRAGE_PORT", self.port.to_string())
            .env("TIRAGE_S3_PORT", (self.port + 1).to_string())
            .env("TIRAGE_PROMETHEUS_PORT", (self.port + 2).to_string())
            .env(
                "TIRAGE_S3_PUBLIC_ENDPOINT",
                format!("http://127.0.0.1:{}", self.port + 1),
            )
            .env("TIRAGE_CALLBACK_SECRET", &self.callback_secret)
            .env(
                "TIRAGE_WORKER_BIN",
                env!("CARGO_BIN_EXE_tirage-worker-slowed"),
            )
            .env("TIRAGE_TEST_JOB_DELAY_MS", JOB_DELAY_MS);
        cmd
    }

    fn up(&self, args: &[&str]) {
        let started = Instant::now();
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        let status = self.script(&all).status().expect("run scripts/compose.sh");
        assert!(
            status.success(),
            "scripts/compose.sh {} failed ({status}); it printed why (podman, an image build, \
             or a service that did not become healthy)",
            all.join(" ")
        );
        eprintln!(
            "compose {} in {:.1} s",
            all.join(" "),
            started.elapsed().as_secs_f64()
        );
    }

    fn start() -> Project {
        let port = std::env::var("TIRAGE_COMPOSE_E2E_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(18490);
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let project = Project {
            port,
            callback_secret: secret,
            down: false,
        };
        // What an interrupted earlier run may have left goes first.
        let status = project.script(&["down"]).status().unwrap();
        assert!(
            status.success(),
            "scripts/compose.sh down (before up) failed"
        );
        project.up(&[]);
        project
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The containers of one service, by name (`tirage-e2e_worker_1`, ...).
    fn containers(&self, service: &str) -> Vec<Container> {
        let names = podman(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("label=io.podman.compose.project={PROJECT}"),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]);
        let mut names: Vec<&str> = names.split_whitespace().collect();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let v: Value = serde_json::from_str(&podman(&["inspect", name])).unwrap();
                let c = &v[0];
                Container {
                    name: name.to_string(),
                    status: c["State"]["Status"].as_str().unwrap_or_default().into(),
                    restarts: c["RestartCount"].as_u64().unwrap_or(0),
                    pid: c["State"]["Pid"].as_u64().unwrap_or(0),
                }
            })
            .collect()
    }

    fn running(&self, service: &str) -> Vec<Container> {
        let all = self.containers(service);
        assert!(
            all.iter().all(|c| c.status == "running"),
            "{service}: {all:?}"
        );
        all
    }

    /// SIGKILL to the container's init (tini) from the host: the container dies as it would
    /// from an OOM kill or a crash. (`podman kill` would count as a deliberate stop, which
    /// podman's restart policy, like Docker's `unless-stopped`, leaves stopped.)
    fn crash(&self, c: &Container) {
        assert!(c.pid > 0, "{} has no process", c.name);
        let status = Command::new("kill")
            .args(["-KILL", &c.pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -KILL {} ({})", c.pid, c.name);
        eprintln!("crashed {} (SIGKILL to pid {})", c.name, c.pid);
    }

    /// Waits until the restart policy has brought the container back.
    async fn wait_restarted(&self, service: &str, before: &Container) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let now = self.containers(service);
            let c = now.iter().find(|c| c.name == before.name).unwrap();
            if c.restarts > before.restarts && c.status == "running" {
                eprintln!(
                    "{} restarted by compose's policy ({} restarts)",
                    c.name, c.restarts
                );
                return;
            }
            assert!(Instant::now() < deadline, "{} not restarted: {c:?}", c.name);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn logs(&self, name: &str) -> String {
        let out = Command::new("podman")
            .args(["logs", name])
            .env(
                "CONTAINERS_CONF",
                repo().join("deploy/podman/containers.conf"),
            )
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// Consumers of the resize queue, as RabbitMQ counts them.
    fn resize_consumers(&self) -> u64 {
        let rabbit = self.running("rabbitmq").remove(0).name;
        let out = podman(&[
            "exec",
            &rabbit,
            "rabbitmqctl",
            "-q",
            "list_queues",
            "name",
            "consumers",
        ]);
        out.lines()
            .filter_map(|l| l.split_once('\t'))
            .find(|(name, _)| *name == "tirage.resize")
            .and_then(|(_, n)| n.trim().parse().ok())
            .unwrap_or(0)
    }

    fn down(&mut self) {
        self.down = true;
        let status = self.script(&["down"]).status().unwrap();
        assert!(status.success(), "scripts/compose.sh down failed");
        let label = format!("label=io.podman.compose.project={PROJECT}");
        for what in [
            vec!["ps", "-a", "-q", "--filter", label.as_str()],
            vec!["volume", "ls", "-q", "--filter", label.as_str()],
            vec!["network", "ls", "-q", "--filter", label.as_str()],
        ] {
            let left = podman(&what);
            assert!(left.trim().is_empty(), "left after down: {what:?}: {left}");
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if !self.down {
            match self.script(&["down"]).status() {
                Ok(s) if s.success() => {}
                other => eprintln!("scripts/compose.sh down: {other:?}"),
            }
        }
    }
}

/// One connection's uploads: each one's photo id and retries, or why it failed.
type Lane = tokio::task::JoinHandle<Vec<Result<(String, u32), String>>>;

/// Starts `uploads` uploads to one batch on four connections. Returns the tasks (each one's
/// results) and the count of uploads answered so far.
fn upload_on_four_lanes(
    api: &Arc<Api>,
    batch: &str,
    photos: &Arc<Vec<(String, Vec<u8>)>>,
    uploads: usize,
) -> (Vec<Lane>, Arc<AtomicUsize>) {
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for lane in 0..4 {
        let (api, photos, batch, done) =
            (api.clone(), photos.clone(), batch.to_string(), done.clone());
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
    (tasks, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compose_end_to_end() {
    let photos = Arc::new(photos::corpus(12));
    let mut project = Project::start();
    assert_eq!(project.running("api").len(), 2, "deploy.replicas of api");
    assert_eq!(
        project.running("worker").len(),
        2,
        "deploy.replicas of worker"
    );
    let api = Arc::new(Api::new(project.base()).await);

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

    // 2. Uploads in flight on four connections. Once the first job is done a worker
    // container crashes (with jobs in flight: each takes JOB_DELAY_MS at least); once four
    // uploads are answered an API container crashes. Both come back by the restart policy;
    // no upload may fail.
    let batch = api.create_batch().await;
    let uploads = photos.len() * 4;
    let (tasks, answered) = upload_on_four_lanes(&api, &batch, &photos, uploads);
    let api_victim = project.running("api").remove(0);
    let worker_victim = project.running("worker").remove(0);
    let (mut api_crashed, mut worker_crashed) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(300);
    while !(api_crashed && worker_crashed) {
        assert!(Instant::now() < deadline, "no progress on batch {batch}");
        if !api_crashed && answered.load(Ordering::SeqCst) >= 4 {
            project.crash(&api_victim);
            api_crashed = true;
        }
        let done = api.batch(&batch).await["done"].as_u64().unwrap() as usize;
        if !worker_crashed && done >= 1 {
            // Mid-batch: jobs are still queued or in flight, so the crash takes some down.
            assert!(
                done < uploads,
                "the batch finished before a worker could crash"
            );
            project.crash(&worker_victim);
            worker_crashed = true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
        "uploads failed while containers crashed: {failures:#?}"
    );
    assert_eq!(ids.len(), uploads);
    eprintln!("uploads retried around the crashed API container: {retried}");
    // Retries registered nothing twice: exactly one photo per upload.
    assert_eq!(api.batch(&batch).await["total"], uploads);
    api.close(&batch).await;
    project.wait_restarted("api", &api_victim).await;
    project.wait_restarted("worker", &worker_victim).await;
    let b = api.wait_completed(&batch, Duration::from_secs(300)).await;
    assert_eq!(b["total"], uploads, "{b}");
    assert_eq!(b["done"], uploads, "{b}");
    assert_eq!(b["failed"], 0, "{b}");
    api.check_photos(&batch, uploads..=uploads, &BTreeMap::new())
        .await;
    let redone: usize = project
        .running("worker")
        .iter()
        .map(|w| {
            project
                .logs(&w.name)
                .lines()
                .filter(|l| l.contains("job settled") && l.contains("\"redelivered\":true"))
                .count()
        })
        .sum();
    eprintln!(
        "jobs redelivered after {} crashed: {redone}",
        worker_victim.name
    );
    assert!(
        redone >= 1,
        "{} crashed with no job in flight",
        worker_victim.name
    );

    // nginx answered each upload exactly once with 202 (the client's retries got the 502s).
    let nginx = project.running("nginx").remove(0).name;
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for line in project
        .logs(&nginx)
        .lines()
        .filter(|l| l.contains("/photos\"") && l.contains("\"POST\""))
    {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            *statuses.entry(v["status"].to_string()).or_default() += 1;
        }
    }
    eprintln!("uploads by status at nginx: {statuses:?}");
    assert_eq!(statuses.get("202").copied(), Some(photos.len() + uploads));

    // 3. Three workers: `up --scale worker=3` on the running project.
    project.up(&["--scale", "worker=3"]);
    let workers = project.running("worker");
    assert_eq!(workers.len(), 3, "{workers:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while project.resize_consumers() != 3 {
        assert!(
            Instant::now() < deadline,
            "the resize queue has {} consumers, not 3",
            project.resize_consumers()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let settled = |name: &str| {
        project
            .logs(name)
            .lines()
            .filter(|l| l.contains("job settled"))
            .count()
    };
    let before: Vec<usize> = workers.iter().map(|w| settled(&w.name)).collect();
    let batch = api.create_batch().await;
    for (name, bytes) in photos.iter() {
        api.upload(&batch, name, bytes).await.unwrap();
    }
    api.close(&batch).await;
    let b = api.wait_completed(&batch, Duration::from_secs(300)).await;
    assert_eq!(b["done"], photos.len(), "{b}");
    assert_eq!(b["failed"], 0, "{b}");
    api.check_photos(&batch, photos.len()..=photos.len(), &BTreeMap::new())
        .await;
    for (w, before) in workers.iter().zip(before) {
        let jobs = settled(&w.name) - before;
        eprintln!("{}: {jobs} jobs of the last batch", w.name);
        assert!(jobs >= 1, "{} took no job of the last batch", w.name);
    }
    prometheus_scrapes_the_topology(project.port + 2, workers.len()).await;

    // 4. Down: nothing of the project is left.
    project.down();
}

/// Prometheus, as docker-compose.yml runs it, scrapes the whole topology: both API replicas
/// and every worker (found by DNS, scaled ones included) and RabbitMQ's per-queue metrics,
/// all up; Tirage's rule groups are loaded; and the workers' job counter has samples.
async fn prometheus_scrapes_the_topology(port: u16, workers: usize) {
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        async move {
            let resp = http.get(path).send().await.ok()?;
            resp.json::<Value>().await.ok()
        }
    };
    let wanted = [
        ("tirage-api", 2),
        ("tirage-worker", workers),
        ("tirage-rabbitmq-queues", 1),
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = Value::Null;
    loop {
        if let Some(targets) = get(format!("{base}/targets?state=active")).await {
            let up = |job: &str| {
                targets["data"]["activeTargets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|t| t["labels"]["job"] == job && t["health"] == "up")
                    .count()
            };
            if wanted.iter().all(|(job, n)| up(job) == *n) {
                break;
            }
            last = targets;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus does not scrape {wanted:?}, all up, within 120 s: {last}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let rules = get(format!("{base}/rules"))
        .await
        .expect("GET /api/v1/rules");
    let groups: Vec<&str> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for group in ["tirage.api", "tirage.worker", "tirage.rabbitmq"] {
        assert!(
            groups.contains(&group),
            "rule group {group} not loaded: {groups:?}"
        );
    }
    // Scraped values, not only targets: the jobs the workers settled, per worker.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let query =
            format!("{base}/query?query=sum%20by%20(instance)%20(tirage_worker_jobs_total)");
        let result = get(query).await.unwrap_or(Value::Null);
        let series = result["data"]["result"].as_array().map_or(0, Vec::len);
        if series == workers {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tirage_worker_jobs_total of {workers} workers not in Prometheus: {result}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    eprintln!("Prometheus scrapes {wanted:?}, rules loaded: {groups:?}");
}
