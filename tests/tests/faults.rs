//! Fault injection on the whole cluster, as `deploy/local/cluster.sh` runs it (nginx, two
//! API replicas and two workers, each restarted when it dies as Kubernetes would:
//! TIRAGE_SUPERVISE=1; workers under a memory limit), on the suite's own Redis (with AOF),
//! RabbitMQ node and Garage, so that stopping them disturbs nothing else on the machine.
//! For each fault, a fresh batch of real photos (100 by default) goes through nginx, the
//! fault comes at about 30 % progress, and the batch must end `completed` with the exact
//! expected split of done and failed photos, every rendition downloadable and decodable, and
//! nothing left in the bucket once the batch is deleted:
//!
//! 1. `kill -9` of one worker, three times;
//! 2. a poison photo that kills every worker that decodes it (it fails `worker_crashed`, all
//!    others are done);
//! 3. the RabbitMQ node stopped and started;
//! 4. Redis killed and started on its AOF;
//! 5. the S3 store frozen (SIGSTOP) for 120 s;
//! 6. a queued photo's registration removed from Redis;
//! 7. an API replica killed during uploads while clients retry with an `Idempotency-Key`.
//!
//! The faults run one after the other in one test (they share the services); each names
//! itself when it fails, the others still run, and the test fails at the end listing them.
//! Needs what `cluster.sh up` needs, plus redis-server, rabbitmq-server and Garage
//! installed (scripts/install-deps.sh, scripts/garage.sh install). docs/RELIABILITY.md has
//! the figures. Environment: TIRAGE_FAULTS (comma-separated names, default all seven;
//! bench/faults.sh adds `s3_down`), TIRAGE_FAULTS_PHOTOS (100), TIRAGE_FAULTS_FREEZE_SECS
//! (120), TIRAGE_FAULTS_S3_DOWN_SECS (600), TIRAGE_FAULTS_JOB_DELAY_MS (300: the workers are
//! this crate's test binary `tirage-worker-slowed`, whose every resize first sleeps this
//! long), TIRAGE_FAULTS_REPORT (a file the figures are appended to, as Markdown table rows).

// Test code: a failed step panics with its message, which is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "faults/poison.rs"]
mod poison;
#[path = "faults/scenarios.rs"]
mod scenarios;
#[path = "faults/services.rs"]
mod services;
#[path = "faults/suite.rs"]
mod suite;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use suite::{Figures, Suite};

const ALL: &[&str] = &[
    "kill_worker",
    "poison_photo",
    "rabbitmq_restart",
    "redis_restart",
    "s3_frozen",
    "api_replica_killed",
    "registration_lost",
];

async fn run(suite: &Suite, fault: &str) -> Figures {
    match fault {
        "kill_worker" => scenarios::kill_worker(suite).await,
        "poison_photo" => scenarios::poison_photo(suite).await,
        "rabbitmq_restart" => scenarios::rabbitmq_restart(suite).await,
        "redis_restart" => scenarios::redis_restart(suite).await,
        "s3_frozen" => scenarios::s3_frozen(suite).await,
        "s3_down" => scenarios::s3_down(suite).await,
        "api_replica_killed" => scenarios::api_replica_killed(suite).await,
        "registration_lost" => scenarios::registration_lost(suite).await,
        other => panic!("TIRAGE_FAULTS names an unknown fault {other:?}; known: {ALL:?}, s3_down"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_batch_completes_exactly_whatever_fails() {
    let started = Instant::now();
    let faults: Vec<String> = match std::env::var("TIRAGE_FAULTS") {
        Ok(list) if !list.trim().is_empty() => {
            list.split(',').map(|f| f.trim().to_string()).collect()
        }
        _ => ALL.iter().map(|f| f.to_string()).collect(),
    };
    let n = scenarios::env_u64("TIRAGE_FAULTS_PHOTOS", 100) as usize;
    let suite = Arc::new(Suite::start(n).await);
    eprintln!(
        "fault suite ready in {:.1} s: {n} photos per batch",
        started.elapsed().as_secs_f64()
    );
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for fault in faults {
        let at = Instant::now();
        eprintln!("=== fault {fault}");
        let task = tokio::spawn({
            let (suite, fault) = (suite.clone(), fault.clone());
            async move { run(&suite, &fault).await }
        });
        match task.await {
            Ok(figures) => {
                eprintln!(
                    "=== fault {fault}: passed in {:.1} s: {figures:?}",
                    at.elapsed().as_secs_f64()
                );
                rows.push(figures);
            }
            Err(e) => {
                let why = match e.try_into_panic() {
                    Ok(p) => p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default(),
                    Err(e) => e.to_string(),
                };
                eprintln!("=== fault {fault}: FAILED: {why}");
                failed.push(format!("{fault}: {why}"));
            }
        }
        let s = suite.clone();
        tokio::task::spawn_blocking(move || s.heal()).await.unwrap();
    }
    report(&rows);
    let suite = Arc::try_unwrap(suite)
        .ok()
        .expect("no fault still holds the suite");
    let dir = suite.dir.clone();
    drop(suite);
    eprintln!(
        "fault suite: {} passed, {} failed, {:.1} s in all",
        rows.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "faults the cluster did not survive (state and logs kept in {}):\n{}",
        dir.display(),
        failed.join("\n")
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The figures as Markdown table rows: on stderr, and appended to TIRAGE_FAULTS_REPORT.
fn report(rows: &[Figures]) {
    let mut text = String::new();
    for f in rows {
        text.push_str(&format!(
            "| {} | {} | {:.0} % | {} | {} | {:.1} s | {} | {} |\n",
            f.fault,
            f.photos,
            f.injected_at,
            f.done,
            f.failed,
            f.close_to_completed.as_secs_f64(),
            f.renditions,
            f.note
        ));
    }
    eprint!("{text}");
    if let Ok(path) = std::env::var("TIRAGE_FAULTS_REPORT") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }
}
