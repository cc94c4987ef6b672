//! The cluster on separate hosts (issue #15, "a network, not localhost"):
//! `deploy/netns/cluster.sh` runs nginx, two API replicas, two workers and the services
//! (Redis, RabbitMQ, Garage of their own) each in a network namespace with its own address on
//! the bridge 10.77.0.0/24, so no process can reach another through 127.0.0.1. This test is
//! the client in the root namespace (10.77.0.1): 12 real photos through nginx at
//! 10.77.0.10:8080, every rendition fetched back and checked, exact counts; the client
//! address the API counted is the root namespace's, as nginx forwarded it in X-Real-IP, not
//! nginx's own; and `cluster.sh check` proves that nothing listens on, connects to or is
//! configured with loopback. `cluster.sh down` runs at the end, pass or fail.
//!
//! Needs root (namespaces, veths, a bridge), iproute2, nginx, redis-server, rabbitmq-server,
//! garage and the binaries (TIRAGE_SKIP_BUILD=1, TIRAGE_BUILD_PROFILE=debug to use the debug
//! ones already built). It fails, naming what is missing, when it cannot build the topology.
//! The namespaces' names are fixed (tirage-proxy, ...): the test takes over a netns cluster
//! that is already up (`down` first), so that every process runs with this run's settings.

// Test code: a failed step panics with its message, which is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tirage_e2e::api::Api;
use tirage_e2e::{photos, repo};

/// The root namespace's address on the bridge: the client's, as the hosts see it.
const CLIENT: &str = "10.77.0.1";
const PROXY: &str = "10.77.0.10";
const SERVICES: &str = "10.77.0.40";

/// The running topology; dropping it runs `cluster.sh down`.
struct Netns {
    run_dir: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Netns {
    fn command(&self, action: &str) -> Command {
        let mut cmd = Command::new(repo().join("deploy/netns/cluster.sh"));
        cmd.arg(action).env("TIRAGE_NETNS_RUN_DIR", &self.run_dir);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, action: &str) -> bool {
        self.command(action)
            .status()
            .unwrap_or_else(|e| panic!("cannot run deploy/netns/cluster.sh {action}: {e}"))
            .success()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.run_dir.join(format!("logs/{name}.log"))).unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.run("down") {
            eprintln!("deploy/netns/cluster.sh down failed");
        }
    }
}

/// `redis-cli -h <services> --scan --pattern <pattern>`, from the client's side.
fn redis_keys(pattern: &str) -> Vec<String> {
    let out = Command::new("redis-cli")
        .args(["-h", SERVICES, "-p", "6379", "--scan", "--pattern", pattern])
        .output()
        .expect("run redis-cli (redis-tools) against the services host");
    assert!(out.status.success(), "redis-cli --scan: {out:?}");
    let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_end_to_end() {
    let started = Instant::now();
    let photos = photos::corpus(12);
    assert_eq!(photos.len(), 12, "bench/corpus has fewer than 12 photos");
    // Keys under a prefix of this run's own: the services host's Redis keeps its data across
    // runs, and the client-address check below must see only this run's keys.
    let prefix = format!("tirage-netns-{}:", uuid::Uuid::new_v4().simple());
    let netns = Netns {
        run_dir: std::env::temp_dir().join("tirage-netns"),
        env: vec![("TIRAGE__REDIS__KEY_PREFIX", prefix.clone())],
    };
    // A topology left up (by a developer or a failed run) would keep its processes' settings.
    assert!(netns.run("down"), "deploy/netns/cluster.sh down failed");
    assert!(
        netns.run("up"),
        "deploy/netns/cluster.sh up failed: it printed why (root and iproute2 to create the \
         namespaces and the bridge, nginx, redis-server, rabbitmq-server, garage, the \
         binaries); logs in {}/logs",
        netns.run_dir.display()
    );
    eprintln!(
        "netns cluster up in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 1. A batch of real photos from the root namespace through nginx on the proxy host.
    let api = Api::new(format!("http://{PROXY}:8080")).await;
    let batch = api.create_batch().await;
    for (name, bytes) in &photos {
        api.upload(&batch, name, bytes).await.unwrap();
    }
    api.close(&batch).await;
    let b = api.wait_completed(&batch, Duration::from_secs(60)).await;
    assert_eq!(b["total"], 12, "{b}");
    assert_eq!(b["done"], 12, "{b}");
    assert_eq!(b["failed"], 0, "{b}");
    eprintln!(
        "batch of 12 photos completed {:.1} s after start",
        started.elapsed().as_secs_f64()
    );
    let renditions = api.check_photos(&batch, 12..=12, &BTreeMap::new()).await;
    assert_eq!(renditions, 36);

    // 2. The client address. nginx accepted the client's connections from the bridge...
    let access = netns.log("nginx.access");
    let ours: Vec<Value> = access
        .lines()
        .filter(|l| l.contains(&batch))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        ours.len() >= 12 + 36,
        "nginx logged {} requests of the batch",
        ours.len()
    );
    for v in &ours {
        assert_eq!(v["remote"], CLIENT, "nginx saw the client as {v}");
    }
    // ...and spread them over both replicas, each on its own host.
    let upstreams: std::collections::BTreeSet<&str> =
        ours.iter().filter_map(|v| v["upstream"].as_str()).collect();
    for replica in ["10.77.0.21:8080", "10.77.0.22:8080"] {
        assert!(
            upstreams.contains(replica),
            "no request reached {replica}: {upstreams:?}"
        );
    }
    // A client's own X-Real-IP counts for nothing: nginx replaces it, and a replica reached
    // directly (not from the proxy's address) ignores it.
    let http = reqwest::Client::new();
    for base in [
        format!("http://{PROXY}:8080"),
        "http://10.77.0.21:8080".to_string(),
    ] {
        let resp = http
            .post(format!("{base}/v1/sessions"))
            .header("X-Real-IP", "198.51.100.7")
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            reqwest::StatusCode::CREATED,
            "POST {base}/v1/sessions"
        );
    }
    // ...and the API counted every session against the address nginx named in X-Real-IP
    // (its per-address session set), never nginx's own 10.77.0.10, the TCP peer it saw, nor
    // the address a client wrote.
    // (The same for the bytes its uploads keep, `addr:<address>:stored`.)
    let counted = redis_keys(&format!("{prefix}addr:*"));
    let client = format!("{prefix}addr:{CLIENT}:");
    assert!(
        counted.contains(&format!("{client}sessions"))
            && counted.iter().all(|k| k.starts_with(&client)),
        "the addresses the API counted sessions and bytes against: {counted:?}"
    );
    let limited = redis_keys(&format!("{prefix}rate:new-session:*"));
    assert_eq!(limited, vec![format!("{prefix}rate:new-session:{CLIENT}")]);

    // 3. Both workers, each on its own host, took jobs of the batch.
    for worker in ["worker1", "worker2"] {
        let jobs = netns
            .log(worker)
            .lines()
            .filter(|l| l.contains("job settled") && l.contains(&batch))
            .count();
        eprintln!("{worker} settled {jobs} jobs of the batch");
        assert!(jobs >= 1, "{worker} took no job of the batch");
    }

    // 4. The proof, with every connection of the run still open: nothing listens on, connects
    // to, or is configured with loopback on any host.
    assert!(
        netns.run("check"),
        "deploy/netns/cluster.sh check: a process may rely on 127.0.0.1 (it printed which)"
    );
    eprintln!("netns end to end: {:.1} s", started.elapsed().as_secs_f64());
    drop(netns);
}
