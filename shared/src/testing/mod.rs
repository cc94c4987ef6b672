//! Test support shared by every crate's tests: connection settings for the real services
//! (from `TIRAGE_TEST_*`, each test under its own unique prefix), and the contract suites
//! every adapter of a port must pass.
//!
//! Panicking is how this module reports: it only ever runs inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod contract_objects;
pub mod contract_queue;
pub mod contract_state;
pub mod outage;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::adapters::{ManualClock, MemoryStateStore};
use crate::model::Batch;
use crate::ports::StateStore;

pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Events exchange the tests share; tests tell their events apart by payload.
pub const TEST_EVENTS_EXCHANGE: &str = "tirage.events.test";
/// Test queues vanish this long after their last use, so leftovers clean themselves up.
pub const TEST_QUEUE_EXPIRES_MS: u32 = 10 * 60 * 1000;

const S3_MISSING: &str =
    "S3 (Garage) is not configured: run `eval \"$(scripts/garage.sh env)\"` or scripts/test.sh";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn env_required(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{S3_MISSING} ({name} is not set)"),
    }
}

/// A fresh name fragment, unique to one test.
pub fn unique() -> String {
    Uuid::new_v4().simple().to_string()
}

pub fn redis_url() -> String {
    env_or("TIRAGE_TEST_REDIS_URL", DEFAULT_REDIS_URL)
}

pub fn amqp_url() -> String {
    env_or("TIRAGE_TEST_AMQP_URL", DEFAULT_AMQP_URL)
}

/// Garage/S3 connection from `TIRAGE_TEST_S3_*`; panics naming the fix when absent.
#[derive(Debug, Clone)]
pub struct S3Env {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    pub region: String,
}

pub fn s3_env() -> S3Env {
    S3Env {
        endpoint: env_required("TIRAGE_TEST_S3_ENDPOINT"),
        access_key: env_required("TIRAGE_TEST_S3_ACCESS_KEY"),
        secret_key: env_required("TIRAGE_TEST_S3_SECRET_KEY"),
        bucket: env_required("TIRAGE_TEST_S3_BUCKET"),
        region: env_or("TIRAGE_TEST_S3_REGION", "garage"),
    }
}

/// Redis settings under a key prefix no other test uses.
#[cfg(feature = "redis")]
pub fn redis_settings() -> crate::adapters::redis::RedisSettings {
    crate::adapters::redis::RedisSettings {
        url: redis_url(),
        key_prefix: format!("tirage-test:{}:", unique()),
    }
}

/// A connected Redis state store under a fresh prefix; panics naming Redis when it is down.
#[cfg(feature = "redis")]
pub async fn redis_state() -> crate::adapters::redis::RedisStateStore {
    let settings = redis_settings();
    let store = crate::adapters::redis::RedisStateStore::connect(&settings)
        .unwrap_or_else(|e| panic!("Redis at {} is not usable: {e}", settings.url));
    if let Err(e) = store.ping().await {
        panic!(
            "Redis is not reachable at {} ({e}); start it or set TIRAGE_TEST_REDIS_URL",
            settings.url
        );
    }
    store
}

/// AMQP settings with queues of their own (`tirage-test.{uuid}.resize…`) that expire when
/// unused.
#[cfg(feature = "amqp")]
pub fn amqp_settings() -> crate::adapters::amqp::AmqpSettings {
    crate::adapters::amqp::AmqpSettings {
        url: amqp_url().into(),
        queue_prefix: format!("tirage-test.{}", unique()),
        events_exchange: TEST_EVENTS_EXCHANGE.to_owned(),
        queue_expires_ms: Some(TEST_QUEUE_EXPIRES_MS),
    }
}

/// A connected AMQP queue on fresh queues; panics naming RabbitMQ when it is down.
#[cfg(feature = "amqp")]
pub async fn amqp_queue() -> crate::adapters::amqp::AmqpQueue {
    amqp_queue_with(&amqp_settings()).await
}

#[cfg(feature = "amqp")]
pub async fn amqp_queue_with(
    settings: &crate::adapters::amqp::AmqpSettings,
) -> crate::adapters::amqp::AmqpQueue {
    crate::adapters::amqp::AmqpQueue::connect(settings)
        .await
        .unwrap_or_else(|e| {
            panic!("RabbitMQ is not reachable ({e}); start it or set TIRAGE_TEST_AMQP_URL")
        })
}

/// S3 settings for Garage from `TIRAGE_TEST_S3_*`, under a fresh key prefix.
#[cfg(feature = "s3")]
pub fn s3_settings() -> crate::adapters::s3::S3Settings {
    let env = s3_env();
    crate::adapters::s3::S3Settings {
        endpoint: env.endpoint,
        public_endpoint: None,
        region: env.region,
        bucket: env.bucket,
        access_key_id: env.access_key,
        secret_access_key: env.secret_key.into(),
        key_prefix: format!("tirage-test/{}/", unique()),
    }
}

/// An S3 store on Garage under a fresh prefix; panics naming S3 when it does not answer.
#[cfg(feature = "s3")]
pub async fn s3_store() -> crate::adapters::s3::S3ObjectStore {
    use crate::ports::ObjectStore;
    let settings = s3_settings();
    let store = crate::adapters::s3::S3ObjectStore::new(&settings);
    if let Err(e) = store.ping().await {
        panic!(
            "S3 (Garage) is not reachable at {} bucket {} ({e}); run `scripts/garage.sh up`",
            settings.endpoint, settings.bucket
        );
    }
    store
}

/// The in-memory store on a manual clock: time passes only when the test says so.
pub struct MemoryHarness {
    pub store: Arc<MemoryStateStore>,
    pub clock: ManualClock,
}

impl Default for MemoryHarness {
    fn default() -> Self {
        let clock = ManualClock::new(chrono::Utc::now());
        MemoryHarness {
            store: Arc::new(MemoryStateStore::with_clock(Arc::new(clock.clone()))),
            clock,
        }
    }
}

#[async_trait]
impl contract_state::StateHarness for MemoryHarness {
    fn store(&self) -> Arc<dyn StateStore> {
        self.store.clone()
    }

    async fn pass(&self, d: Duration) {
        self.clock.advance(d);
    }

    async fn assert_batch_expiry(&self, batch: &Batch) {
        // The memory store keeps no TTL of its own: expiry is `batch.expires_at`, checked
        // on access, which the cases verify by moving the clock past it.
        let stored = self.store.get_batch(batch.id).await.unwrap().unwrap();
        assert_eq!(stored.expires_at, batch.expires_at);
    }

    async fn assert_everything_expires(&self) {}
}

#[cfg(feature = "redis")]
pub use redis_harness::RedisHarness;

#[cfg(feature = "redis")]
mod redis_harness {
    use super::*;
    use crate::adapters::redis::RedisStateStore;

    /// The Redis store under a fresh prefix; time passes for real.
    pub struct RedisHarness {
        pub store: Arc<RedisStateStore>,
    }

    impl RedisHarness {
        pub async fn new() -> Self {
            RedisHarness {
                store: Arc::new(redis_state().await),
            }
        }

        async fn pttls(&self, pattern: &str) -> Vec<(String, i64)> {
            let keys = self.store.scan_keys(pattern).await.unwrap();
            let mut out = Vec::new();
            for key in keys {
                out.push((key.clone(), self.store.pttl(&key).await.unwrap()));
            }
            out
        }
    }

    #[async_trait]
    impl contract_state::StateHarness for RedisHarness {
        fn store(&self) -> Arc<dyn StateStore> {
            self.store.clone()
        }

        async fn pass(&self, d: Duration) {
            tokio::time::sleep(d).await;
        }

        async fn assert_batch_expiry(&self, batch: &Batch) {
            let pattern = format!("{}batch:{}*", self.store.key_prefix(), batch.id);
            let keys = self.pttls(&pattern).await;
            assert!(!keys.is_empty(), "no Redis key for batch {}", batch.id);
            let expected = (batch.expires_at - chrono::Utc::now()).num_milliseconds();
            for (key, pttl) in keys {
                assert!(pttl > 0, "{key} has no expiry (PTTL {pttl})");
                assert!(
                    (pttl - expected).abs() < 1500,
                    "{key} expires in {pttl} ms, the batch in {expected} ms"
                );
            }
        }

        async fn assert_everything_expires(&self) {
            let pattern = format!("{}*", self.store.key_prefix());
            let keys = self.pttls(&pattern).await;
            assert!(!keys.is_empty(), "the store wrote nothing under its prefix");
            for (key, pttl) in keys {
                assert!(pttl > 0, "{key} has no expiry (PTTL {pttl})");
            }
        }
    }
}

/// A fresh in-process queue.
#[derive(Default)]
pub struct InProcessHarness {
    pub queue: Arc<crate::adapters::InProcessQueue>,
}

struct BroadcastProbe(
    tokio::sync::broadcast::Receiver<crate::adapters::inprocess::Event>,
    String,
);

#[async_trait]
impl contract_queue::EventProbe for BroadcastProbe {
    async fn next(&mut self) -> Option<(String, Vec<u8>)> {
        loop {
            match self.0.recv().await {
                // An in-process "binding" is exact-match on the routing key.
                Ok(e) if e.routing_key == self.1 => return Some((e.routing_key, e.payload)),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    }
}

#[async_trait]
impl contract_queue::QueueHarness for InProcessHarness {
    fn queue(&self) -> Arc<dyn crate::ports::JobQueue> {
        self.queue.clone()
    }

    async fn publish_raw(&self, body: &[u8]) {
        self.queue.publish_raw(body).await.unwrap();
    }

    async fn take_dead_letter(&self) -> Option<crate::adapters::DeadLetter> {
        self.queue.take_dead_letter().await.unwrap()
    }

    async fn subscribe_events(&self, routing_key: &str) -> Box<dyn contract_queue::EventProbe> {
        Box::new(BroadcastProbe(
            self.queue.subscribe_events(),
            routing_key.to_owned(),
        ))
    }
}

#[cfg(feature = "amqp")]
pub use amqp_harness::AmqpHarness;

#[cfg(feature = "amqp")]
mod amqp_harness {
    use super::*;
    use crate::adapters::amqp::{AmqpQueue, EventSubscription};

    /// RabbitMQ on queues of its own.
    pub struct AmqpHarness {
        pub queue: Arc<AmqpQueue>,
    }

    impl AmqpHarness {
        pub async fn new() -> Self {
            AmqpHarness {
                queue: Arc::new(amqp_queue().await),
            }
        }
    }

    #[async_trait]
    impl contract_queue::EventProbe for EventSubscription {
        async fn next(&mut self) -> Option<(String, Vec<u8>)> {
            EventSubscription::next(self).await
        }
    }

    #[async_trait]
    impl contract_queue::QueueHarness for AmqpHarness {
        fn queue(&self) -> Arc<dyn crate::ports::JobQueue> {
            self.queue.clone()
        }

        async fn publish_raw(&self, body: &[u8]) {
            self.queue.publish_raw(body).await.unwrap();
        }

        async fn take_dead_letter(&self) -> Option<crate::adapters::DeadLetter> {
            // A dead letter is published before the delivery is acked, so it is already
            // there; the short retry only absorbs broker-side latency.
            for _ in 0..20 {
                if let Some(d) = self.queue.take_dead_letter().await.unwrap() {
                    return Some(d);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            None
        }

        async fn subscribe_events(&self, routing_key: &str) -> Box<dyn contract_queue::EventProbe> {
            Box::new(self.queue.subscribe_events(routing_key).await.unwrap())
        }
    }
}

/// A file-system store in a fresh temporary directory. `execute` plays the service's
/// `/v1/objects/{key}` route: verify the signature, then read or write the store.
pub struct FsHarness {
    pub store: Arc<crate::adapters::FsObjectStore>,
    pub dir: tempfile::TempDir,
}

pub const FS_TEST_BASE_URL: &str = "http://tirage.test:8080";

impl FsHarness {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::adapters::FsSettings {
            root: dir.path().to_path_buf(),
            public_base_url: FS_TEST_BASE_URL.to_owned(),
            presign_secret: format!("test-secret-{}", unique()).into(),
        };
        FsHarness {
            store: Arc::new(
                crate::adapters::FsObjectStore::connect(&settings)
                    .await
                    .unwrap(),
            ),
            dir,
        }
    }
}

/// Splits `{base}/v1/objects/{key}?expires=…&signature=…`.
pub fn parse_fs_presigned(url: &str) -> Option<(String, i64, String)> {
    let rest = url
        .strip_prefix(FS_TEST_BASE_URL)?
        .strip_prefix("/v1/objects/")?;
    let (key, query) = rest.split_once('?')?;
    let mut expires = None;
    let mut signature = None;
    for pair in query.split('&') {
        match pair.split_once('=')? {
            ("expires", v) => expires = v.parse().ok(),
            ("signature", v) => signature = Some(v.to_owned()),
            _ => {}
        }
    }
    Some((key.to_owned(), expires?, signature?))
}

#[async_trait]
impl contract_objects::ObjectHarness for FsHarness {
    fn store(&self) -> Arc<dyn crate::ports::ObjectStore> {
        self.store.clone()
    }

    async fn execute(
        &self,
        request: &crate::ports::PresignedRequest,
        url: &str,
        body: Option<bytes::Bytes>,
    ) -> (u16, bytes::Bytes) {
        use crate::ports::ObjectStore;
        let Some((key, expires, signature)) = parse_fs_presigned(url) else {
            return (400, bytes::Bytes::new());
        };
        if self
            .store
            .verify_presigned(&request.method, &key, expires, &signature)
            .is_err()
        {
            return (403, bytes::Bytes::new());
        }
        match request.method.as_str() {
            "PUT" => {
                let content_type = request
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("application/octet-stream");
                self.store
                    .put(&key, body.unwrap_or_default(), content_type)
                    .await
                    .unwrap();
                (200, bytes::Bytes::new())
            }
            "GET" => match self.store.get(&key).await {
                Ok(bytes) => (200, bytes),
                Err(_) => (404, bytes::Bytes::new()),
            },
            _ => (405, bytes::Bytes::new()),
        }
    }
}

#[cfg(feature = "s3")]
pub use s3_harness::S3Harness;

#[cfg(feature = "s3")]
mod s3_harness {
    use super::*;
    use crate::adapters::s3::S3ObjectStore;

    /// Garage under a fresh key prefix; presigned requests go over real HTTP.
    pub struct S3Harness {
        pub store: Arc<S3ObjectStore>,
        pub http: reqwest::Client,
    }

    impl S3Harness {
        pub async fn new() -> Self {
            S3Harness {
                store: Arc::new(s3_store().await),
                http: reqwest::Client::new(),
            }
        }
    }

    #[async_trait]
    impl contract_objects::ObjectHarness for S3Harness {
        fn store(&self) -> Arc<dyn crate::ports::ObjectStore> {
            self.store.clone()
        }

        async fn execute(
            &self,
            request: &crate::ports::PresignedRequest,
            url: &str,
            body: Option<bytes::Bytes>,
        ) -> (u16, bytes::Bytes) {
            let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
            let mut req = self.http.request(method, url);
            for (k, v) in &request.headers {
                req = req.header(k, v);
            }
            if let Some(body) = body {
                req = req.body(body);
            }
            let response = req
                .send()
                .await
                .unwrap_or_else(|e| panic!("S3 (Garage) did not answer a presigned request: {e}"));
            let status = response.status().as_u16();
            (status, response.bytes().await.unwrap_or_default())
        }
    }
}
