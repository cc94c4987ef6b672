//! The suite's own Redis, RabbitMQ node and Garage, on ports of their own: the faults stop,
//! kill and freeze them, and the machine's shared services (6379, 5672, 3900) must not feel
//! it. Each runs as a child process of the test from a folder of the run, and stops when
//! dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tirage_e2e::cluster::{alive, send};
use tirage_e2e::repo;

pub const REDIS_PORT: u16 = 16479;
pub const AMQP_PORT: u16 = 15680;
const RABBIT_DIST_PORT: u16 = 25680;
const RABBIT_NODE: &str = "tirage-faults@localhost";
const GARAGE_S3_PORT: u16 = 13900;
const GARAGE_RPC_PORT: u16 = 13901;
const GARAGE_ADMIN_PORT: u16 = 13903;

pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

fn wait_port(port: u16, what: &str, within: Duration, log: &Path) {
    let deadline = Instant::now() + within;
    while !port_open(port) {
        assert!(
            Instant::now() < deadline,
            "{what} does not answer on 127.0.0.1:{port} after {within:?}; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(cmd: &mut Command, log: &Path, what: &str) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}; is it installed?"))
}

/// redis-server with AOF (appendfsync everysec) in its own folder.
pub struct Redis {
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    pub fn start(dir: &Path) -> Redis {
        std::fs::create_dir_all(dir).unwrap();
        let mut redis = Redis {
            dir: dir.to_path_buf(),
            child: None,
        };
        redis.start_again();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{REDIS_PORT}")
    }

    /// Starts the server on the same folder (it replays its AOF).
    pub fn start_again(&mut self) {
        assert!(
            !port_open(REDIS_PORT),
            "port {REDIS_PORT} is taken: another Redis answers there"
        );
        let log = self.dir.join("redis.log");
        let child = spawn(
            Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &REDIS_PORT.to_string()])
                .args(["--appendonly", "yes", "--appendfsync", "everysec"])
                .args(["--save", "", "--daemonize", "no"])
                .arg("--dir")
                .arg(&self.dir),
            &log,
            "redis-server",
        );
        self.child = Some(child);
        wait_port(
            REDIS_PORT,
            "the suite's Redis",
            Duration::from_secs(30),
            &log,
        );
    }

    /// SIGKILL: whatever the last second wrote may be lost, as in a node crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// `redis-cli` against this server; its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &REDIS_PORT.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("run redis-cli");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A RabbitMQ node of its own (name, ports, database, logs, cookie), no plugins.
pub struct Rabbit {
    dir: PathBuf,
    child: Option<Child>,
}

impl Rabbit {
    pub fn start(dir: &Path) -> Rabbit {
        std::fs::create_dir_all(dir).unwrap();
        let cookie = dir.join(".erlang.cookie");
        if !cookie.exists() {
            std::fs::write(&cookie, uuid::Uuid::new_v4().simple().to_string()).unwrap();
            let status = Command::new("chmod")
                .arg("400")
                .arg(&cookie)
                .status()
                .unwrap();
            assert!(status.success());
        }
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{AMQP_PORT}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("rabbitmq-env.conf"), "").unwrap();
        let mut rabbit = Rabbit {
            dir: dir.to_path_buf(),
            child: None,
        };
        rabbit.start_again();
        rabbit
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{AMQP_PORT}/%2f")
    }

    fn command(&self, program: &str) -> Command {
        let d = |sub: &str| self.dir.join(sub);
        let mut cmd = Command::new(Path::new("/usr/lib/rabbitmq/bin").join(program));
        // HOME holds the node's own Erlang cookie; every other file lives in the folder too,
        // and the machine's rabbitmq-env.conf (which names the shared node) is not read.
        cmd.env("HOME", &self.dir)
            .env("RABBITMQ_NODENAME", RABBIT_NODE)
            .env("RABBITMQ_NODE_PORT", AMQP_PORT.to_string())
            .env("RABBITMQ_DIST_PORT", RABBIT_DIST_PORT.to_string())
            .env("RABBITMQ_MNESIA_BASE", d("mnesia"))
            .env("RABBITMQ_LOG_BASE", d("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d("rabbitmq.conf"))
            .env("RABBITMQ_CONF_ENV_FILE", d("rabbitmq-env.conf"))
            .env("RABBITMQ_PID_FILE", d("rabbitmq.pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            );
        cmd
    }

    /// Starts the node on the same database (durable queues and persistent messages come
    /// back).
    pub fn start_again(&mut self) {
        assert!(
            !port_open(AMQP_PORT),
            "port {AMQP_PORT} is taken: another RabbitMQ answers there"
        );
        let log = self.dir.join("server.log");
        let child = spawn(
            &mut self.command("rabbitmq-server"),
            &log,
            "rabbitmq-server",
        );
        self.child = Some(child);
        wait_port(
            AMQP_PORT,
            "the suite's RabbitMQ node",
            Duration::from_secs(180),
            &log,
        );
    }

    /// `rabbitmqctl stop`: the node closes its connections and halts; waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let out = self
            .command("rabbitmqctl")
            .args(["-n", RABBIT_NODE, "stop"])
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("rabbitmqctl stop: {out:?}; killing the node");
            child.kill().ok();
        }
        child.wait().ok();
        let deadline = Instant::now() + Duration::from_secs(30);
        while port_open(AMQP_PORT) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Garage of its own through scripts/garage.sh (TIRAGE_GARAGE_DIR and ports).
pub struct Garage {
    dir: PathBuf,
    /// The `TIRAGE__S3__*` and `TIRAGE_TEST_S3_*` settings `garage.sh env` prints.
    pub env: Vec<(String, String)>,
}

impl Garage {
    pub fn start(dir: &Path) -> Garage {
        let mut garage = Garage {
            dir: dir.to_path_buf(),
            env: Vec::new(),
        };
        let status = garage.script("up").status().expect("run scripts/garage.sh");
        assert!(
            status.success(),
            "scripts/garage.sh up failed for the suite's Garage in {}",
            dir.display()
        );
        let out = garage.script("env").output().unwrap();
        assert!(out.status.success(), "scripts/garage.sh env: {out:?}");
        garage.env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        garage
    }

    fn script(&self, action: &str) -> Command {
        let mut cmd = Command::new(repo().join("scripts/garage.sh"));
        cmd.arg(action)
            .env("TIRAGE_GARAGE_DIR", &self.dir)
            .env("TIRAGE_GARAGE_S3_PORT", GARAGE_S3_PORT.to_string())
            .env("TIRAGE_GARAGE_RPC_PORT", GARAGE_RPC_PORT.to_string())
            .env("TIRAGE_GARAGE_ADMIN_PORT", GARAGE_ADMIN_PORT.to_string());
        cmd
    }

    pub fn get(&self, key: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("garage.sh env printed no {key}"))
    }

    pub fn pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.dir.join("garage.pid")).unwrap();
        text.trim().parse().unwrap()
    }

    /// SIGSTOP: connections stay open and nothing answers.
    pub fn freeze(&self) {
        send(self.pid(), "STOP");
    }

    pub fn thaw(&self) {
        send(self.pid(), "CONT");
    }

    /// Stopped for good (connections refused), to be started again with [`Garage::restart`].
    pub fn kill(&self) {
        let pid = self.pid();
        send(pid, "KILL");
        while alive(pid) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn restart(&self) {
        let status = self.script("up").status().unwrap();
        assert!(status.success(), "scripts/garage.sh up (restart)");
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(self.dir.join("garage.pid"))
            && let Ok(pid) = text.trim().parse::<u32>()
            && alive(pid)
        {
            send(pid, "CONT");
        }
        self.script("down").status().ok();
    }
}
