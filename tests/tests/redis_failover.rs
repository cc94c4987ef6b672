//! The whole local cluster (nginx, two API replicas, two workers, RabbitMQ, Garage) on a
//! Redis Cluster of its own (three masters, three replicas, `scripts/redis-cluster.sh` on
//! ports 17101-17106): a batch of real photos runs, and in the middle of it the master that
//! holds the batch's slot is killed (SIGKILL). Its replica is promoted; the batch must end
//! `completed` with exact counts and every rendition in place. The killed node then comes
//! back and rejoins as a replica.
//!
//! Needs what `cluster.sh up` needs plus redis-server and redis-cli; fails naming the step.
//! Environment: TIRAGE_E2E_FAILOVER_PORT (nginx's port, default 18580),
//! TIRAGE_E2E_PHOTOS (photos in the batch, default 48).

// Test code: a failed step panics with its message, which is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tirage_e2e::api::Api;
use tirage_e2e::cluster::{Cluster, alive, send, slowed_workers};
use tirage_e2e::{photos, repo};

const BASE_PORT: u16 = 17101;

/// A Redis Cluster started for this test; `down` when dropped.
struct RedisCluster {
    dir: PathBuf,
}

impl RedisCluster {
    fn script(&self, action: &str) -> Command {
        let mut cmd = Command::new(repo().join("scripts/redis-cluster.sh"));
        cmd.args([action, &BASE_PORT.to_string()])
            .arg(&self.dir)
            .env("TIRAGE_REDIS_CLUSTER_NODE_TIMEOUT_MS", "2000");
        cmd
    }

    fn up(dir: PathBuf) -> (RedisCluster, String) {
        let cluster = RedisCluster { dir };
        let out = cluster.script("up").output().expect("run redis-cluster.sh");
        assert!(
            out.status.success(),
            "scripts/redis-cluster.sh up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let urls = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        (cluster, urls)
    }

    fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The port of the master serving `slot`, as node `asked` sees the cluster.
    fn master_of(&self, asked: u16, slot: u16) -> u16 {
        let nodes = self.cli(asked, &["cluster", "nodes"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
            });
            if serves {
                let port = fields[1].split(['@', ':']).nth(1).unwrap();
                return port.parse().unwrap();
            }
        }
        panic!("no master serves slot {slot}:\n{nodes}");
    }

    fn pid(&self, port: u16) -> u32 {
        std::fs::read_to_string(self.dir.join(format!("{port}/redis.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let _ = self.script("down").status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_completes_across_a_redis_master_failover() {
    let n: usize = std::env::var("TIRAGE_E2E_PHOTOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let port = std::env::var("TIRAGE_E2E_FAILOVER_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18580);
    let run_dir = std::env::temp_dir().join(format!("tirage-failover-{}", std::process::id()));
    let (redis, urls) = RedisCluster::up(run_dir.join("redis"));
    let photos = photos::corpus(12);
    let mut env = vec![
        ("TIRAGE__REDIS__CLUSTER_URLS", urls),
        // A stall (a write the failover lost) is repaired within seconds rather than the
        // default ten minutes.
        ("TIRAGE__WORKER__RECONCILE_EVERY_MS", "2000".to_string()),
        ("TIRAGE__WORKER__STALL_AFTER_MS", "8000".to_string()),
    ];
    // Long enough jobs (the slowed test worker) that the kill lands mid-batch.
    env.extend(slowed_workers(
        env!("CARGO_BIN_EXE_tirage-worker-slowed"),
        150,
    ));
    let cluster = Cluster::up(port, run_dir.join("cluster"), &env);
    let mut api = Api::new(cluster.base()).await;
    api.upload_retries = 10;

    let batch = api.create_batch().await;
    for i in 0..n {
        let (name, bytes) = &photos[i % photos.len()];
        api.upload(&batch, name, bytes).await.unwrap();
    }
    api.close(&batch).await;
    let slot: u16 = redis
        .cli(BASE_PORT, &["cluster", "keyslot", &format!("{{{batch}}}")])
        .trim()
        .parse()
        .unwrap();
    let master = redis.master_of(BASE_PORT, slot);

    // Mid-batch: some photos done, most not.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let b = api.batch(&batch).await;
        let done = b["done"].as_u64().unwrap();
        if done >= 2 {
            assert!(done < n as u64, "the batch finished before the kill: {b}");
            break;
        }
        assert!(Instant::now() < deadline, "no progress on {batch}: {b}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = redis.pid(master);
    send(pid, "KILL");
    let killed_at = Instant::now();
    eprintln!("killed the Redis master on port {master} (slot {slot}, pid {pid})");

    let b = api.wait_completed(&batch, Duration::from_secs(300)).await;
    eprintln!(
        "batch completed {:.1} s after the kill",
        killed_at.elapsed().as_secs_f64()
    );
    assert_eq!(b["total"], n, "{b}");
    assert_eq!(b["done"], n, "{b}");
    assert_eq!(b["failed"], 0, "{b}");
    api.check_photos(&batch, n..=n, &BTreeMap::new()).await;

    // The slot moved to the killed master's replica.
    let survivor = if master == BASE_PORT {
        BASE_PORT + 1
    } else {
        BASE_PORT
    };
    let promoted = redis.master_of(survivor, slot);
    assert_ne!(promoted, master, "the slot is still on the killed node");
    eprintln!("slot {slot} now served by port {promoted}");

    // The killed node restarts from its nodes.conf and rejoins, now as a replica.
    assert!(!alive(pid));
    let again = redis.script("up").output().unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let role = redis.cli(master, &["role"]);
        if role.starts_with("slave") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "port {master} rejoined as {role}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    drop(cluster);
    drop(redis);
}
