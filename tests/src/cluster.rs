//! `deploy/local/cluster.sh` driven from a test: `up` with the test's settings, the pids and
//! logs of its processes, signals to them, and `down` when dropped (also when the test fails).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::repo;

/// The running cluster; dropping it runs `cluster.sh down`.
pub struct Cluster {
    pub port: u16,
    pub run_dir: PathBuf,
    /// Everything `up` was given (cluster.sh options and TIRAGE__ settings); `down` gets the
    /// same, so that it finds what `up` started.
    env: Vec<(String, String)>,
}

impl Cluster {
    /// `cluster.sh up` on `port` from `run_dir`, with two API replicas and two workers unless
    /// `env` says otherwise. Panics, naming the log folder, when `up` fails.
    pub fn up(port: u16, run_dir: PathBuf, env: &[(&str, String)]) -> Cluster {
        let mut all = vec![
            ("TIRAGE_API_REPLICAS".to_string(), "2".to_string()),
            ("TIRAGE_WORKERS".to_string(), "2".to_string()),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let cluster = Cluster {
            port,
            run_dir,
            env: all,
        };
        let started = Instant::now();
        let status = cluster
            .command("up")
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

    pub fn command(&self, action: &str) -> Command {
        let mut cmd = Command::new(repo().join("deploy/local/cluster.sh"));
        cmd.arg(action)
            .env("TIRAGE_PORT", self.port.to_string())
            .env("TIRAGE_RUN_DIR", &self.run_dir);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A `cluster.sh` setting as `up` got it: from `env` (the last one given wins, as in
    /// [`Cluster::command`]), else from this process's environment, which `up` inherits.
    fn setting(&self, key: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(key).ok())
    }

    fn number(&self, key: &str, default: u16) -> u16 {
        self.setting(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    /// Every API replica's and worker's own HTTP address, as `cluster.sh` assigns the ports:
    /// `(api-1, http://127.0.0.1:…)`, … from `TIRAGE_API_BASE_PORT` (default `port + 1`), then
    /// `(worker-1, …)`, … from `TIRAGE_WORKER_BASE_PORT` (default `port + 101`). Their
    /// `/healthz`, `/readyz` and `/metrics` answer there; nginx proxies none of them.
    pub fn processes(&self) -> Vec<(String, String)> {
        let api_base = self.number("TIRAGE_API_BASE_PORT", self.port + 1);
        let worker_base = self.number("TIRAGE_WORKER_BASE_PORT", self.port + 101);
        let api = (0..self.number("TIRAGE_API_REPLICAS", 2))
            .map(|i| (format!("api-{}", i + 1), api_base + i));
        let workers = (0..self.number("TIRAGE_WORKERS", 2))
            .map(|i| (format!("worker-{}", i + 1), worker_base + i));
        api.chain(workers)
            .map(|(name, port)| (name, format!("http://127.0.0.1:{port}")))
            .collect()
    }

    /// The pid `up` (or, in supervise mode, the supervisor) recorded for one of its
    /// processes (`api-1`, `worker-2`, ...), if there is a pid file.
    pub fn pid(&self, name: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.run_dir.join(format!("{name}.pid"))).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    /// The process's pid, alive and not a zombie, waiting up to `within` for it (a supervised
    /// process being restarted has none for a moment).
    pub fn live_pid(&self, name: &str, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(pid) = self.pid(name).filter(|&p| alive(p)) {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "{name} has no live process after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, name: &str, signal: &str) -> u32 {
        let pid = self.live_pid(name, Duration::from_secs(30));
        send(pid, signal);
        eprintln!("sent SIG{signal} to {name} (pid {pid})");
        pid
    }

    /// One process's log (`worker-1`, `api-2`, `nginx.access`, ...).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.run_dir.join(format!("logs/{name}.log"))).unwrap_or_default()
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

/// What makes `cluster.sh` run slowed workers: `tirage-worker-slowed` (this crate's test
/// binary, `src/bin/`) in place of `tirage-worker`, every resize sleeping `delay_ms` first, so
/// that a fault injected while a batch runs surely finds jobs in flight. `bin` is
/// `env!("CARGO_BIN_EXE_tirage-worker-slowed")`, which only the test targets know.
pub fn slowed_workers(bin: &str, delay_ms: impl ToString) -> [(&'static str, String); 2] {
    [
        ("TIRAGE_WORKER_BIN", bin.to_owned()),
        ("TIRAGE_TEST_JOB_DELAY_MS", delay_ms.to_string()),
    ]
}

/// `kill -<signal> <pid>`; panics when kill fails.
pub fn send(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Whether `pid` runs (a zombie counts as dead).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
