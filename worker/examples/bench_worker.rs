//! Worker throughput against the engine alone (docs/BENCHMARKS.md, "## Worker"); run by
//! bench/worker.sh. Same corpus, same machine, same run:
//!   1. engine alone: `tirage_engine::resize` over every photo on `concurrency` threads;
//!   2. worker: the originals are stored in S3 (Garage) and a closed batch in Redis, every job
//!      is published to RabbitMQ, and one worker (concurrency = cores) drains them; timed
//!      from the first publish to the batch completing.
//!
//! The difference is the cost of S3, AMQP and Redis per photo.
//!
//!   cargo run --release -p tirage-worker --example bench_worker -- bench/corpus [rounds]
//!
//! `BENCH_DEFAULT_MALLOC` set (to anything) leaves glibc's default thresholds (the A/B of
//! `tirage_engine::keep_working_memory`, docs/BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tirage_ports::TraceContext;

use bytes::Bytes;
use chrono::Utc;
use secrecy::SecretString;
use tirage_core::{Batch, BatchOptions, BatchState, PhotoRecord, ResizeJob, keys};
use tirage_ports::WorkItem;
use tirage_runtime::{PortNames, config};
use tirage_testkit as testing;
use tirage_worker::{Ports, Worker, WorkerSettings};
use uuid::Uuid;

fn corpus(dir: &PathBuf) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read corpus {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase)
                    .as_deref(),
                Some("jpg" | "jpeg" | "png" | "webp")
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no photos in {}", dir.display());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn engine_alone(photos: &[Vec<u8>], threads: usize, options: &BatchOptions) -> Duration {
    let next = AtomicUsize::new(0);
    let limits = tirage_engine::Limits::default();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = photos.get(i) else { break };
                    tirage_engine::resize(p, options, &limits).expect("corpus photo resizes");
                }
            });
        }
    });
    start.elapsed()
}

async fn through_worker(
    ports: &Ports,
    photos: &[Vec<u8>],
    options: &BatchOptions,
    concurrency: usize,
) -> (Duration, [f64; 4]) {
    let now = Utc::now();
    let batch = Batch {
        id: Uuid::new_v4(),
        owner: "bench".into(),
        state: BatchState::Open,
        options: options.clone(),
        callback_url: None,
        total: 0,
        done: 0,
        failed: 0,
        created_at: now,
        expires_at: now + chrono::Duration::hours(1),
    };
    ports
        .state
        .create_batch(&batch, tirage_ports::Cap::Unlimited)
        .await
        .unwrap();
    let ids: Vec<Uuid> = photos.iter().map(|_| Uuid::new_v4()).collect();
    let records: Vec<PhotoRecord> = ids
        .iter()
        .map(|id| PhotoRecord::queued(*id, "bench.jpg"))
        .collect();
    ports
        .state
        .add_photos(batch.id, &records, 100_000)
        .await
        .unwrap();
    for (id, data) in ids.iter().zip(photos) {
        ports
            .objects
            .put(
                &keys::original_key(batch.id, *id),
                Bytes::from(data.clone()),
                "image/jpeg",
            )
            .await
            .unwrap();
    }
    ports.state.close_batch(batch.id).await.unwrap();

    let settings = WorkerSettings {
        host: "127.0.0.1".into(),
        port: 0,
        concurrency,
        callback_secret: SecretString::from("bench-callback-secret-not-published"),
        ..WorkerSettings::from_layers(&config::Layers::defaults_only()).unwrap()
    };
    let worker = Worker::from_ports(settings, ports.clone()).await.unwrap();
    let stop = worker.stop_token();
    let task = tokio::spawn(worker.run_until_stopped());
    // Let the consumer attach before the clock starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    for id in &ids {
        let job = WorkItem::Resize(ResizeJob::new(&batch, *id, None, chrono::Utc::now()));
        ports
            .queue
            .publish(&job, &TraceContext::none())
            .await
            .unwrap();
    }
    loop {
        let b = ports.state.get_batch(batch.id).await.unwrap().unwrap();
        if b.state == BatchState::Completed {
            assert_eq!(
                (b.done, b.failed),
                (photos.len() as u64, 0),
                "every photo done"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    let cpu_after = cpu_seconds();
    let cpu = std::array::from_fn(|i| cpu_after[i] - cpu_before[i]);
    stop.cancel();
    task.await.unwrap().unwrap();
    ports
        .objects
        .delete_prefix(&keys::batch_prefix(batch.id))
        .await
        .unwrap();
    ports.state.delete_batch(batch.id).await.unwrap();
    (elapsed, cpu)
}

/// The services sharing the machine's cores, by process name, and this process.
const ACCOUNTED: [&str; 4] = ["garage", "beam.smp", "redis-server", "this process"];

/// CPU seconds (user + system) used so far by each of [`ACCOUNTED`]: every live process
/// whose name is that, and this process itself; read from /proc.
fn cpu_seconds() -> [f64; 4] {
    let ticks = 100.0; // USER_HZ: 100 on every Linux this runs on.
    let own = std::process::id().to_string();
    let mut used = [0.0; 4];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let cpu = (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / ticks;
        let slot = if pid == own {
            Some(3)
        } else {
            ACCOUNTED[..3].iter().position(|k| name == *k)
        };
        if let Some(i) = slot {
            used[i] += cpu;
        }
    }
    used
}

#[tokio::main]
async fn main() {
    // As `tirage-worker` does: both the engine alone and the worker run as they ship.
    if std::env::var_os("BENCH_DEFAULT_MALLOC").is_none() {
        tirage_engine::keep_working_memory();
    }
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "bench/corpus".into()));
    let rounds: usize = args.next().map(|r| r.parse().unwrap()).unwrap_or(3);
    let photos = corpus(&dir);
    let mb = photos.iter().map(|p| p.len()).sum::<usize>() as f64 / 1e6;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let options = BatchOptions::default();
    let ports = Ports {
        state: Arc::new(testing::redis_state().await),
        objects: Arc::new(testing::s3_store().await),
        queue: Arc::new(testing::amqp_queue().await),
        names: PortNames::production(),
    };
    println!(
        "corpus: {} photos, {mb:.1} MB, sizes {:?} {:?} q{}; {cores} cores; median of {rounds} alternating rounds",
        photos.len(),
        options.sizes,
        options.format,
        options.quality
    );
    // Warm-up round of each, not counted (page cache, connections, lazy pools). Then the two
    // alternate, so that load from anything else on the machine hits both alike.
    engine_alone(&photos, cores, &options);
    through_worker(&ports, &photos, &options, cores).await;
    let (mut engines, mut workers) = (Vec::new(), Vec::new());
    // CPU each party used in the timed parts, summed over the rounds of each kind.
    let (mut engine_cpu, mut worker_cpu) = ([0.0; 4], [0.0; 4]);
    for _ in 0..rounds {
        let before = cpu_seconds();
        engines.push(engine_alone(&photos, cores, &options));
        let after = cpu_seconds();
        let (elapsed, cpu) = through_worker(&ports, &photos, &options, cores).await;
        workers.push(elapsed);
        for i in 0..4 {
            engine_cpu[i] += after[i] - before[i];
            worker_cpu[i] += cpu[i];
        }
    }
    engines.sort();
    workers.sort();
    let engine = engines[engines.len() / 2];
    let best = workers[workers.len() / 2];
    println!(
        "rounds (s): engine {:?}  worker {:?}",
        engines
            .iter()
            .map(|d| (d.as_secs_f64() * 1e3).round() / 1e3)
            .collect::<Vec<_>>(),
        workers
            .iter()
            .map(|d| (d.as_secs_f64() * 1e3).round() / 1e3)
            .collect::<Vec<_>>()
    );
    let n = photos.len() as f64;
    let e = n / engine.as_secs_f64();
    let w = n / best.as_secs_f64();
    let per_photo_ms = (best.as_secs_f64() - engine.as_secs_f64()) * 1e3 * cores as f64 / n;
    println!(
        "engine alone : {e:8.2} photos/s ({:.3} s)",
        engine.as_secs_f64()
    );
    println!(
        "worker       : {w:8.2} photos/s ({:.3} s)",
        best.as_secs_f64()
    );
    println!("worker/engine: {:.3}", w / e);
    println!("overhead     : {per_photo_ms:.1} ms of worker time per photo for S3 + AMQP + Redis");
    // Where the cores went, per photo: the same engine work in both; the rest is the price.
    let per_photo = |cpu: f64| cpu * 1e3 / (n * rounds as f64);
    for (i, name) in ACCOUNTED.iter().enumerate() {
        println!(
            "CPU ms/photo {name:<13}: engine rounds {:6.1}, worker rounds {:6.1}",
            per_photo(engine_cpu[i]),
            per_photo(worker_cpu[i])
        );
    }
}
