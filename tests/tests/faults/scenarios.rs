//! The faults, one function each: a fresh batch, the fault at about 30 % progress, and the
//! exact outcome it must end with.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::poison;
use crate::suite::{Expect, Figures, Suite, WORKER_1_HTTP_PORT};

/// How long the S3 store stays frozen (SIGSTOP) in `s3_frozen`.
fn freeze_secs() -> u64 {
    env_u64("TIRAGE_FAULTS_FREEZE_SECS", 120)
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Uploads and closes a fresh batch of the suite's photos; returns it and when it closed.
async fn batch_of(s: &Suite, photos: &[(String, Vec<u8>)]) -> (String, Instant) {
    let started = Instant::now();
    let batch = s.fresh_batch(photos).await;
    eprintln!(
        "batch {batch}: {} photos uploaded and closed in {:.1} s",
        photos.len(),
        started.elapsed().as_secs_f64()
    );
    (batch, Instant::now())
}

/// Fault 1: `kill -9` of one worker, three times during the batch; its supervisor starts it again
/// each time. Every photo ends done: a photo fails `worker_crashed` only when three of its
/// runs ended with their worker dying, and before each kill the suite waits until no photo
/// that has crashed twice is still unsettled, so no photo is blamed for the test's kills.
pub async fn kill_worker(s: &Suite) -> Figures {
    let photos = s.photos.clone();
    let (batch, closed) = batch_of(s, &photos).await;
    let injected = s.wait_progress(&batch, 0.30).await;
    for k in 0..3 {
        if k > 0 {
            wait_no_photo_near_crash_limit(s, &batch).await;
            s.wait_progress(&batch, 0.30 + 0.15 * f64::from(k)).await;
        }
        let killed = s.cluster.signal("worker-1", "KILL");
        let restarted = wait_restarted(s, "worker-1", killed).await;
        wait_ready(WORKER_1_HTTP_PORT).await;
        eprintln!("worker-1 (pid {killed}) killed; pid {restarted} runs in its place");
    }
    let mut figures = s
        .finish(
            "kill -9 a worker, 3 times",
            &batch,
            closed,
            &injected,
            Expect::all_done(photos.len()),
        )
        .await;
    figures.note = "3 kills at 30/45/60 %".into();
    figures
}

/// Fault 2: A poison photo: a PNG whose decode needs 768 MB, fed to workers limited to
/// `WORKER_DATA_LIMIT_MB` of data. Each run kills its worker (the allocator aborts); after
/// three runs the photo fails `worker_crashed`, and every other photo is done.
pub async fn poison_photo(s: &Suite) -> Figures {
    let poison = poison::poison_png(&s.cache);
    let mut photos: Vec<(String, Vec<u8>)> = s.photos.as_ref().clone();
    // At 30 % of the batch, so that its first run comes about then.
    photos.insert(photos.len() * 3 / 10, ("poison.png".into(), poison));
    let restarts_before = s.worker_restarts();
    let (batch, closed) = batch_of(s, &photos).await;
    let injected = s.api.batch(&batch).await;
    let n = photos.len();
    let mut expect = Expect::all_done(n);
    expect.done = n - 1;
    expect.failed = 1;
    expect
        .failures
        .insert("poison.png".into(), "worker_crashed".into());
    let mut figures = s
        .finish(
            "poison photo (decode over the memory limit)",
            &batch,
            closed,
            &injected,
            expect,
        )
        .await;
    let restarts = s.worker_restarts() - restarts_before;
    let aborts: usize = (1..=2)
        .map(|i| {
            s.cluster
                .log(&format!("worker-{i}"))
                .matches("memory allocation of")
                .count()
        })
        .sum();
    assert!(
        restarts >= 3,
        "the poison photo was to kill a worker at each of its 3 runs; restarts: {restarts}"
    );
    assert!(
        aborts >= 3,
        "the workers did not die of the memory limit (no 'memory allocation of' in their logs)"
    );
    figures.injected_at = 30.0; // its place in the upload order
    figures.note = format!("{restarts} worker deaths, all by the memory limit");
    figures
}

/// Fault 3: The RabbitMQ node stopped (`rabbitmqctl stop`) for 10 s, then started on its own
/// database: durable queues and persistent messages come back, workers reconnect.
pub async fn rabbitmq_restart(s: &Suite) -> Figures {
    let photos = s.photos.clone();
    let (batch, closed) = batch_of(s, &photos).await;
    let injected = s.wait_progress(&batch, 0.30).await;
    let down = Instant::now();
    blocking(|| s.rabbit.lock().unwrap().stop());
    tokio::time::sleep(Duration::from_secs(10)).await;
    blocking(|| s.rabbit.lock().unwrap().start_again());
    let outage = down.elapsed();
    let mut figures = s
        .finish(
            "RabbitMQ node stop + start",
            &batch,
            closed,
            &injected,
            Expect::all_done(photos.len()),
        )
        .await;
    figures.note = format!("broker away {:.0} s", outage.as_secs_f64());
    figures
}

/// Fault 4: Redis killed (SIGKILL) and started again on its AOF (appendfsync everysec): what the
/// last second wrote may be lost; the reconciler republishes the jobs of photos left queued.
pub async fn redis_restart(s: &Suite) -> Figures {
    let photos = s.photos.clone();
    let (batch, closed) = batch_of(s, &photos).await;
    let injected = s.wait_progress(&batch, 0.30).await;
    let down = Instant::now();
    blocking(|| s.redis.lock().unwrap().kill());
    tokio::time::sleep(Duration::from_secs(3)).await;
    blocking(|| s.redis.lock().unwrap().start_again());
    let outage = down.elapsed();
    let mut figures = s
        .finish(
            "Redis kill -9 + restart (AOF)",
            &batch,
            closed,
            &injected,
            Expect::all_done(photos.len()),
        )
        .await;
    figures.note = format!("Redis away {:.0} s", outage.as_secs_f64());
    figures
}

/// Fault 5: The S3 store frozen (SIGSTOP) for 120 s: its connections hang; workers pause intake and
/// retry outside their attempt budget. Every photo ends done.
pub async fn s3_frozen(s: &Suite) -> Figures {
    let photos = s.photos.clone();
    let (batch, closed) = batch_of(s, &photos).await;
    let injected = s.wait_progress(&batch, 0.30).await;
    let secs = freeze_secs();
    s.garage.freeze();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    s.garage.thaw();
    let mut expect = Expect::all_done(photos.len());
    expect.within += Duration::from_secs(secs);
    let mut figures = s
        .finish(
            &format!("S3 frozen (SIGSTOP) {secs} s"),
            &batch,
            closed,
            &injected,
            expect,
        )
        .await;
    figures.note = format!("S3 frozen {secs} s");
    figures
}

/// The long run's extra fault (bench/faults.sh): the S3 store killed, so connections are
/// refused, for `TIRAGE_FAULTS_S3_DOWN_SECS` (600), then started again. Every photo ends done.
pub async fn s3_down(s: &Suite) -> Figures {
    let photos = s.photos.clone();
    let (batch, closed) = batch_of(s, &photos).await;
    let injected = s.wait_progress(&batch, 0.30).await;
    let secs = env_u64("TIRAGE_FAULTS_S3_DOWN_SECS", 600);
    s.garage.kill();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    blocking(|| s.garage.restart());
    let mut expect = Expect::all_done(photos.len());
    expect.within += Duration::from_secs(secs);
    let mut figures = s
        .finish(
            &format!("S3 down (killed) {secs} s"),
            &batch,
            closed,
            &injected,
            expect,
        )
        .await;
    figures.note = format!("S3 refused connections {secs} s");
    figures
}

/// Fault 6: One queued photo's registration removed from Redis (HDEL of its record in the batch's
/// photos hash), as a lost Redis write would. Its job is then a stray and is dropped. The
/// reconciler notices the stalled batch, finds the id its order names with neither a record
/// nor an outcome, gives it a queued record back (named by its id: the file name is lost)
/// and publishes its job again: every photo ends done.
pub async fn registration_lost(s: &Suite) -> Figures {
    let photos = s.photos.clone();
    let (batch, closed) = batch_of(s, &photos).await;
    let injected = s.wait_progress(&batch, 0.30).await;
    let listed = s.api.photos(&batch).await;
    let victim = listed
        .iter()
        .rev()
        .find(|p| p["state"] == "queued")
        .unwrap_or_else(|| panic!("no queued photo left in batch {batch}"));
    let id = victim["id"].as_str().unwrap().to_string();
    let key = format!("tirage:batch:{{{batch}}}:photos");
    let removed = blocking(|| s.redis.lock().unwrap().cli(&["HDEL", &key, &id]));
    assert_eq!(removed, "1", "HDEL {key} {id}");
    eprintln!(
        "registration of photo {id} ({}) removed",
        victim["filename"]
    );
    let n = photos.len();
    let mut expect = Expect::all_done(n);
    // Stalls are noticed after 5 s here: a minute is plenty once the others are done.
    expect.within = Duration::from_secs(180);
    let mut figures = s
        .finish(
            "a queued photo's registration lost",
            &batch,
            closed,
            &injected,
            expect,
        )
        .await;
    figures.note = "record HDEL'd while queued".into();
    figures
}

/// Fault 7: One API replica killed (SIGKILL) while uploads run on both; clients retry with the
/// same `Idempotency-Key`. Every upload succeeds, none is registered twice, all are done.
pub async fn api_replica_killed(s: &Suite) -> Figures {
    let photos = s.photos.clone();
    let n = photos.len();
    let batch = s.api.create_batch().await;
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let lanes = (0..4).map(|_| {
        let (started, finished, photos, batch) = (
            started.clone(),
            finished.clone(),
            photos.clone(),
            batch.clone(),
        );
        async move {
            let mut out = Vec::new();
            loop {
                let i = started.fetch_add(1, Ordering::SeqCst);
                let Some((name, bytes)) = photos.get(i) else {
                    return out;
                };
                out.push(s.api.upload(&batch, name, bytes).await);
                finished.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let kill = async {
        while finished.load(Ordering::SeqCst) < n * 3 / 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let at = finished.load(Ordering::SeqCst);
        let killed = s.cluster.signal("api-1", "KILL");
        (at, killed)
    };
    let (results, (at, killed)) = tokio::join!(futures::future::join_all(lanes), kill);
    let mut ids = std::collections::HashSet::new();
    let mut retried = 0;
    let mut failures = Vec::new();
    for r in results.into_iter().flatten() {
        match r {
            Ok((id, retries)) => {
                assert!(
                    ids.insert(id.clone()),
                    "photo id {id} came back for two uploads"
                );
                retried += retries;
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "uploads failed: {failures:#?}");
    let b = s.api.batch(&batch).await;
    assert_eq!(b["total"], n, "every upload registered exactly once: {b}");
    s.api.close(&batch).await;
    let closed = Instant::now();
    let restarted = wait_restarted(s, "api-1", killed).await;
    eprintln!(
        "api-1 (pid {killed}) killed after {at} uploads; pid {restarted} runs in its place; {retried} retries"
    );
    assert!(
        retried >= 1,
        "no upload was in flight on api-1 when it was killed"
    );
    let injected = serde_json::json!({"total": n, "done": 0, "failed": 0});
    let mut figures = s
        .finish(
            "API replica kill -9 during uploads",
            &batch,
            closed,
            &injected,
            Expect::all_done(n),
        )
        .await;
    figures.injected_at = at as f64 * 100.0 / n as f64;
    figures.note = format!("{retried} upload retries (Idempotency-Key), 0 duplicates");
    figures
}

/// Waits until the supervisor has started `name` again (another live pid than `killed`).
async fn wait_restarted(s: &Suite, name: &str, killed: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pid) = s.cluster.pid(name)
            && pid != killed
            && tirage_e2e::cluster::alive(pid)
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{name} was not restarted after its kill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_ready(port: u16) {
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(&url).await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} not ready after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until no unsettled photo of the batch has two runs that ended with their worker
/// dying, or may have (`batch:{id}:runs`, a live hold counted too, ≥ 2 without an
/// outcome): the next kill cannot be its third.
async fn wait_no_photo_near_crash_limit(s: &Suite, batch: &str) {
    let runs_key = format!("tirage:batch:{{{batch}}}:runs");
    let outcomes_key = format!("tirage:batch:{{{batch}}}:outcomes");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let runs = blocking(|| s.redis.lock().unwrap().cli(&["HGETALL", &runs_key]));
        let lines: Vec<&str> = runs.lines().collect();
        let mut risky = Vec::new();
        for pair in lines.chunks(2) {
            let [photo, value] = pair else { continue };
            // `crashed:holder:until` (redis/src/scripts/run_hold.lua): a run holding the
            // photo now may be one the next kill ends, so it counts as crashed already.
            let mut fields = value.split(':');
            let crashed: u32 = fields.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            let held = fields.next().is_some_and(|holder| !holder.is_empty());
            let count = crashed + u32::from(held);
            if count >= 2 {
                let settled = blocking(|| {
                    s.redis
                        .lock()
                        .unwrap()
                        .cli(&["HEXISTS", &outcomes_key, photo])
                });
                if settled != "1" {
                    risky.push(photo.to_string());
                }
            }
        }
        if risky.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "photos {risky:?} stay unsettled after two crashed runs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs a blocking call (a child process, a wait on a port) off the async workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}
