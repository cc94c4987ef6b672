//! The worker suite against the real Redis, RabbitMQ and Garage (settings from
//! `TIRAGE_TEST_*`, every test under its own key prefix, object prefix and queues), plus
//! what only real processes can show: a worker SIGKILLed mid-job (held there by an S3 that
//! froze, through a stalled `ServiceLink`), and SIGTERM → exit 0.
//! A missing service fails the test, naming it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod suite;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::ExposeSecret;
use tirage_amqp::{AmqpQueue, AmqpSettings};
use tirage_core::{BatchOptions, OutputFormat, PhotoState, keys};
use tirage_ports::{ObjectStore, StateStore, WorkItem};
use tirage_redis::{RedisSettings, RedisStateStore};
use tirage_runtime::PortNames;
use tirage_s3::{S3ObjectStore, S3Settings};
use tirage_testkit as testing;
use tirage_testkit::amqp::{AmqpTestExt, EventSubscription};
use tirage_worker::Ports;

use common::{DeadLetter, EventSource, Harness};

struct Services {
    ports: Ports,
    queue: AmqpQueue,
    _redis_keys: testing::RedisCleanup,
}

#[async_trait]
impl Harness for Services {
    fn ports(&self) -> Ports {
        self.ports.clone()
    }

    async fn take_dead_letters(&self) -> Vec<DeadLetter> {
        let mut out = Vec::new();
        while let Some(d) = self
            .queue
            .take_dead_letter()
            .await
            .expect("RabbitMQ dead letters")
        {
            out.push(DeadLetter {
                item: serde_json::from_slice::<WorkItem>(&d.body).ok(),
                reason: d.reason,
            });
        }
        out
    }

    async fn subscribe_events(&self) -> Box<dyn EventSource> {
        let sub = self
            .queue
            .subscribe_events("batch.completed")
            .await
            .expect("RabbitMQ events subscription");
        Box::new(Events(sub))
    }
}

struct Events(EventSubscription);

#[async_trait]
impl EventSource for Events {
    async fn next(&mut self, wait: Duration) -> Option<Vec<u8>> {
        match tokio::time::timeout(wait, self.0.next()).await {
            Ok(Some((_, payload))) => Some(payload),
            Ok(None) => panic!("RabbitMQ events channel closed"),
            Err(_) => None,
        }
    }
}

struct Config {
    redis: RedisSettings,
    amqp: AmqpSettings,
    s3: S3Settings,
}

fn config() -> Config {
    Config {
        redis: testing::redis_settings(),
        amqp: testing::amqp_settings(),
        s3: testing::s3_settings(),
    }
}

async fn connect(c: &Config) -> Services {
    let state = RedisStateStore::connect(&c.redis).expect("Redis settings");
    state
        .ping()
        .await
        .unwrap_or_else(|e| panic!("Redis is not reachable at {}: {e}", c.redis.url));
    let objects = S3ObjectStore::new(&c.s3);
    objects.ping().await.unwrap_or_else(|e| {
        panic!(
            "S3 (Garage) is not reachable at {}: {e}; run scripts/garage.sh up",
            c.s3.endpoint
        )
    });
    let queue = AmqpQueue::connect(&c.amqp)
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ is not reachable: {e}"));
    Services {
        ports: Ports {
            state: Arc::new(state),
            objects: Arc::new(objects),
            queue: Arc::new(queue.clone()),
            names: PortNames::production(),
        },
        queue,
        _redis_keys: testing::RedisCleanup::of(&c.redis),
    }
}

async fn services() -> Arc<dyn Harness> {
    Arc::new(connect(&config()).await)
}

suite!(services);

// ---- the real binary -------------------------------------------------------------------

/// The environment that points a `tirage-worker` process at this test's prefixes.
fn worker_env(c: &Config, http_port: u16) -> Vec<(String, String)> {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut env = vec![
        ("TIRAGE_CONFIG", format!("{repo}/config/default.toml")),
        ("TIRAGE__REDIS__URL", c.redis.url.clone()),
        ("TIRAGE__REDIS__KEY_PREFIX", c.redis.key_prefix.clone()),
        ("TIRAGE__AMQP__URL", c.amqp.url.expose_secret().to_owned()),
        ("TIRAGE__AMQP__QUEUE_PREFIX", c.amqp.queue_prefix.clone()),
        (
            "TIRAGE__AMQP__EVENTS_EXCHANGE",
            c.amqp.events_exchange.clone(),
        ),
        ("TIRAGE__S3__ENDPOINT", c.s3.endpoint.clone()),
        ("TIRAGE__S3__REGION", c.s3.region.clone()),
        ("TIRAGE__S3__BUCKET", c.s3.bucket.clone()),
        ("TIRAGE__S3__ACCESS_KEY_ID", c.s3.access_key_id.clone()),
        (
            "TIRAGE__S3__SECRET_ACCESS_KEY",
            c.s3.secret_access_key.expose_secret().to_owned(),
        ),
        ("TIRAGE__S3__KEY_PREFIX", c.s3.key_prefix.clone()),
        ("TIRAGE__WORKER__HOST", "127.0.0.1".into()),
        ("TIRAGE__WORKER__PORT", http_port.to_string()),
        ("TIRAGE__WORKER__CONCURRENCY", "2".into()),
        ("TIRAGE__WORKER__SHUTDOWN_GRACE_MS", "5000".into()),
        ("TIRAGE__WORKER__CALLBACK_SECRET", common::SECRET.into()),
        ("TIRAGE__LOG__LEVEL", "info".into()),
    ];
    if let Some(ms) = c.amqp.queue_expires_ms {
        env.push(("TIRAGE__AMQP__QUEUE_EXPIRES_MS", ms.to_string()));
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn spawn_worker(c: &Config, name: &str) -> Proc {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("tirage-worker-{}-{name}.log", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_tirage-worker"))
        .envs(worker_env(c, port))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn tirage-worker");
    Proc { child, port, log }
}

/// Waits until the process's `/readyz` answers 200; panics, with its log, when it exits
/// first or is not ready within 20 s.
async fn wait_ready(w: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = reqwest::get(format!("http://127.0.0.1:{}/readyz", w.port))
            .await
            .map(|r| r.status().as_u16())
            .ok();
        if ready == Some(200) {
            return;
        }
        assert!(
            w.child.try_wait().unwrap().is_none(),
            "the worker exited before it was ready:\n{}",
            w.log()
        );
        assert!(
            Instant::now() < deadline,
            "never ready ({ready:?}):\n{}",
            w.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metric(port: u16, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_is_replaced_and_counts_stay_exact() {
    use tirage_testkit::outage::{ServiceLink, url_addr, url_via};

    let c = config();
    let h = connect(&c).await;
    let ports = h.ports();
    let options = BatchOptions {
        sizes: vec![720, 360],
        format: OutputFormat::Jpeg,
        quality: 80,
        ..BatchOptions::default()
    };
    let f = common::batch_with(
        &ports,
        options,
        None,
        vec![common::jpeg(1600, 1200), common::jpeg(1200, 900)],
    )
    .await;

    // The first worker reaches S3 through a link that freezes once the worker is ready: both
    // jobs then hang reading their originals, so it is surely mid-job when killed. A stall,
    // not a cut: a refused connection would fail the jobs at once (retried later, the gate
    // paused), a frozen S3 keeps them running. Ready first, because /readyz pings S3 (the
    // gate only probes it after a job fails). Nothing times out before the kill: the link
    // accepts, so no connect timeout fires, and a GET gets 60 s (the S3 client's attempt
    // timeout, s3/src/client.rs, and [worker] io_timeout_ms) before the job would fail
    // transiently and the gate, finding S3 mute, pause intake; the kill comes as soon as
    // both jobs are in flight.
    let link = ServiceLink::start(&url_addr(&c.s3.endpoint)).await;
    let through_link = Config {
        s3: S3Settings {
            endpoint: url_via(&c.s3.endpoint, &link.addr()),
            ..c.s3.clone()
        },
        redis: c.redis.clone(),
        amqp: c.amqp.clone(),
    };
    let mut first = spawn_worker(&through_link, "first");
    wait_ready(&mut first).await;
    link.stall();
    common::publish_all(&ports, &f).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if metric(first.port, "tirage_worker_jobs_in_flight").await == Some(2.0) {
            break;
        }
        assert!(
            first.child.try_wait().unwrap().is_none(),
            "first worker exited early:\n{}",
            first.log()
        );
        assert!(
            Instant::now() < deadline,
            "first worker never started both jobs:\n{}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.child.kill().unwrap(); // SIGKILL: no chance to settle anything.
    first.child.wait().unwrap();
    for p in &f.photos {
        let rec = ports
            .state
            .get_photo(f.batch.id, *p)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            rec.state,
            PhotoState::Queued,
            "nothing recorded by the killed worker"
        );
    }

    // The broker redelivers both unacked jobs to a second worker.
    let mut second = spawn_worker(&c, "second");
    let batch = common::wait_completed(&ports, f.batch.id, Duration::from_secs(60)).await;
    assert_eq!(
        (batch.total, batch.done, batch.failed),
        (2, 2, 0),
        "{}",
        second.log()
    );
    for p in &f.photos {
        let rec = ports
            .state
            .get_photo(f.batch.id, *p)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.state, PhotoState::Done);
        for out in &rec.outputs {
            let key = keys::rendition_key(f.batch.id, *p, out.size, OutputFormat::Jpeg);
            let meta = ports
                .objects
                .head(&key)
                .await
                .unwrap()
                .expect("rendition stored");
            assert_eq!(meta.size, out.bytes);
        }
    }
    let redelivered_log = second.log();
    assert!(
        redelivered_log.contains("\"redelivered\":true"),
        "{redelivered_log}"
    );

    // SIGTERM: the second worker drains and exits 0.
    let status = Command::new("kill")
        .args(["-TERM", &second.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let code = loop {
        if let Some(s) = second.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(code.success(), "exit status {code:?}:\n{}", second.log());
    let _ = std::fs::remove_file(&first.log);
    let _ = std::fs::remove_file(&second.log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_ready_and_logs_json_with_the_request_id() {
    let c = config();
    let h = connect(&c).await;
    let ports = h.ports();
    let f = common::batch_with(
        &ports,
        BatchOptions {
            sizes: vec![360],
            format: OutputFormat::Jpeg,
            quality: 80,
            ..BatchOptions::default()
        },
        None,
        vec![common::jpeg(640, 480)],
    )
    .await;
    let mut w = spawn_worker(&c, "ready");
    wait_ready(&mut w).await;
    common::publish_all(&ports, &f).await;
    common::wait_completed(&ports, f.batch.id, Duration::from_secs(30)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &w.child.id().to_string()])
        .status();
    assert!(w.child.wait().unwrap().success(), "{}", w.log());
    let log = w.log();
    let want = format!("req-{}", f.photos[0]);
    // The resize job's line: the batch's finalisation may settle first.
    let line = log
        .lines()
        .find(|l| l.contains("job settled") && l.contains(r#""kind":"resize""#))
        .unwrap_or_else(|| panic!("no resize job log line:\n{log}"));
    let json: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(json["span"]["request_id"], want.as_str(), "{line}");
    let _ = std::fs::remove_file(&w.log);
}

/// A worker started while RabbitMQ is away reports it, consumes once the broker is back,
/// and consumes again after its connection is cut mid-life: real connections to the real
/// broker, through a link the test cuts and restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_waits_for_the_broker_and_reconnects_after_losing_it() {
    use tirage_testkit::outage::{ServiceLink, url_addr, url_via};

    let c = config();
    let h = connect(&c).await;
    let ports = h.ports();
    let amqp_url = c.amqp.url.expose_secret().to_owned();
    let link = ServiceLink::start_cut(&url_addr(&amqp_url)).await;
    let through_link = Config {
        amqp: AmqpSettings {
            url: url_via(&amqp_url, &link.addr()).into(),
            ..c.amqp.clone()
        },
        redis: c.redis.clone(),
        s3: c.s3.clone(),
    };
    let mut w = spawn_worker(&through_link, "late-broker");
    let readyz = |port: u16| async move {
        reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
            .await
            .ok()
            .map(|r| r.status().as_u16())
    };
    let started = Instant::now();
    loop {
        if let Some(status) = readyz(w.port).await {
            assert_eq!(status, 503, "ready without a broker");
            break;
        }
        assert!(
            w.child.try_wait().unwrap().is_none(),
            "the worker exited without a broker:\n{}",
            w.log()
        );
        assert!(started.elapsed() < Duration::from_secs(20), "{}", w.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let options = || BatchOptions {
        sizes: vec![360],
        format: OutputFormat::Jpeg,
        quality: 80,
        ..BatchOptions::default()
    };
    let first = common::batch_with(&ports, options(), None, vec![common::jpeg(640, 480)]).await;
    common::publish_all(&ports, &first).await;
    link.restore().await;
    let batch = common::wait_completed(&ports, first.batch.id, Duration::from_secs(60)).await;
    assert_eq!((batch.done, batch.failed), (1, 0), "{}", w.log());
    assert_eq!(readyz(w.port).await, Some(200));

    // The broker connection drops under the running worker; it consumes again once back.
    link.cut();
    let second = common::batch_with(&ports, options(), None, vec![common::jpeg(640, 480)]).await;
    common::publish_all(&ports, &second).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    link.restore().await;
    let batch = common::wait_completed(&ports, second.batch.id, Duration::from_secs(60)).await;
    assert_eq!((batch.done, batch.failed), (1, 0), "{}", w.log());
    assert!(
        metric(w.port, "tirage_worker_consumer_restarts_total")
            .await
            .is_some_and(|n| n >= 1.0),
        "{}",
        w.log()
    );
    w.child.kill().unwrap();
    w.child.wait().unwrap();
    let _ = std::fs::remove_file(&w.log);
}
