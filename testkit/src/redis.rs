//! Redis for tests, a single server or the local Redis Cluster (`scripts/redis-cluster.sh`):
//! a store under a key prefix no other test uses, and what tests inspect beyond the
//! StateStore port (keys and their expiries, read on every master).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::contract_state;
use super::env::{redis_cluster_urls, redis_url, unique};
use tirage_core::model::Batch;
use tirage_ports::{StateError, StateStore};
use tirage_redis::{RedisSettings, RedisStateStore};

fn fresh_prefix() -> String {
    format!("tirage-test:{}:", unique())
}

/// Redis settings under a key prefix no other test uses.
pub fn redis_settings() -> RedisSettings {
    RedisSettings {
        url: redis_url(),
        cluster_urls: Vec::new(),
        key_prefix: fresh_prefix(),
    }
}

/// Settings for the test Redis Cluster, under a key prefix no other test uses.
pub fn redis_cluster_settings() -> RedisSettings {
    let cluster_urls = redis_cluster_urls();
    RedisSettings {
        url: cluster_urls.first().cloned().unwrap_or_default(),
        cluster_urls,
        key_prefix: fresh_prefix(),
    }
}

/// A connected store on `settings`; panics naming what to start when it does not answer.
pub async fn redis_state_on(settings: &RedisSettings) -> RedisStateStore {
    let store = RedisStateStore::connect(settings)
        .unwrap_or_else(|e| panic!("Redis settings {settings:?} are not usable: {e}"));
    if let Err(e) = store.ping().await {
        if settings.cluster_urls.is_empty() {
            panic!(
                "Redis is not reachable at {} ({e}); start it or set TIRAGE_TEST_REDIS_URL",
                settings.url
            );
        }
        panic!(
            "the Redis Cluster at {:?} is not reachable ({e}); start it with \
             `scripts/redis-cluster.sh up` or set TIRAGE_TEST_REDIS_CLUSTER_URLS",
            settings.cluster_urls
        );
    }
    store
}

/// A connected Redis state store under a fresh prefix; panics naming Redis when it is down.
pub async fn redis_state() -> RedisStateStore {
    redis_state_on(&redis_settings()).await
}

/// The same on the test Redis Cluster.
pub async fn redis_cluster_state() -> RedisStateStore {
    redis_state_on(&redis_cluster_settings()).await
}

fn redis_error(e: ::redis::RedisError) -> StateError {
    StateError::Unavailable(e.to_string())
}

/// Keys matching `pattern` on one server, when it is a master (a replica's copies are its
/// master's), over a blocking connection: it also runs in `drop`.
fn master_keys(url: &str, pattern: &str) -> ::redis::RedisResult<Vec<String>> {
    let client = ::redis::Client::open(url)?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    let role: Vec<::redis::Value> = ::redis::cmd("ROLE").query(&mut conn)?;
    let is_master = matches!(role.first(), Some(::redis::Value::BulkString(r)) if r == b"master");
    if !is_master {
        return Ok(Vec::new());
    }
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// Keys of `store`'s Redis (every master of a cluster) matching `pattern`.
pub async fn scan_keys(store: &RedisStateStore, pattern: &str) -> Result<Vec<String>, StateError> {
    let urls = store.server_urls().to_vec();
    let pattern = pattern.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut keys = BTreeSet::new();
        for url in urls {
            keys.extend(master_keys(&url, &pattern).map_err(redis_error)?);
        }
        Ok(keys.into_iter().collect())
    })
    .await
    .map_err(|e| StateError::Unavailable(e.to_string()))?
}

/// Milliseconds until `key` expires: -1 without expiry, -2 when absent.
pub async fn pttl(store: &RedisStateStore, key: &str) -> Result<i64, StateError> {
    ::redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_error)
}

/// Every key under `store`'s prefix with its PTTL.
async fn pttls(store: &RedisStateStore, pattern: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for key in scan_keys(store, pattern).await.unwrap() {
        let ttl = pttl(store, &key).await.unwrap();
        out.push((key, ttl));
    }
    out
}

/// Deletes every key under a test's prefix when dropped, so a test run leaves nothing
/// behind in Redis (its keys would expire anyway, but batches only after days).
pub struct RedisCleanup {
    urls: Vec<String>,
    prefix: String,
}

impl RedisCleanup {
    pub fn new(url: &str, prefix: &str) -> Self {
        Self::on(vec![url.to_owned()], prefix)
    }

    pub fn of(settings: &RedisSettings) -> Self {
        Self::on(
            settings
                .server_urls()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            &settings.key_prefix,
        )
    }

    fn on(urls: Vec<String>, prefix: &str) -> Self {
        assert!(!prefix.is_empty(), "refusing to clean up an empty prefix");
        RedisCleanup {
            urls,
            prefix: prefix.to_owned(),
        }
    }

    /// SCAN + DEL on every master, one key at a time (a cluster refuses a DEL of keys in
    /// several slots), over blocking connections: it runs in `drop`, where nothing can be
    /// awaited.
    fn delete_all(&self) -> ::redis::RedisResult<()> {
        let pattern = format!("{}*", self.prefix);
        for url in &self.urls {
            let keys = master_keys(url, &pattern)?;
            if keys.is_empty() {
                continue;
            }
            let client = ::redis::Client::open(url.as_str())?;
            let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
            let mut pipe = ::redis::pipe();
            for key in &keys {
                pipe.del(key).ignore();
            }
            pipe.query::<()>(&mut conn)?;
        }
        Ok(())
    }
}

impl Drop for RedisCleanup {
    fn drop(&mut self) {
        // Best effort: what is left expires on its own.
        let _ = self.delete_all();
    }
}

/// The Redis store under a fresh prefix; time passes for real. Its keys are deleted when
/// it is dropped.
pub struct RedisHarness {
    pub store: Arc<RedisStateStore>,
    _cleanup: RedisCleanup,
}

impl RedisHarness {
    pub async fn new() -> Self {
        Self::on(redis_settings()).await
    }

    /// On the test Redis Cluster.
    pub async fn cluster() -> Self {
        Self::on(redis_cluster_settings()).await
    }

    async fn on(settings: RedisSettings) -> Self {
        RedisHarness {
            store: Arc::new(redis_state_on(&settings).await),
            _cleanup: RedisCleanup::of(&settings),
        }
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
        let pattern = format!("{}batch:{{{}}}*", self.store.key_prefix(), batch.id);
        let keys = pttls(&self.store, &pattern).await;
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
        let keys = pttls(&self.store, &pattern).await;
        assert!(!keys.is_empty(), "the store wrote nothing under its prefix");
        for (key, pttl) in keys {
            assert!(pttl > 0, "{key} has no expiry (PTTL {pttl})");
        }
    }
}
