//! Redis for tests: a store under a key prefix no other test uses, and what tests inspect
//! beyond the StateStore port (keys and their expiries).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::contract_state;
use super::env::{redis_url, unique};
use crate::adapters::redis::{RedisSettings, RedisStateStore};
use crate::model::Batch;
use crate::ports::{StateError, StateStore};

/// Redis settings under a key prefix no other test uses.
pub fn redis_settings() -> RedisSettings {
    RedisSettings {
        url: redis_url(),
        key_prefix: format!("tirage-test:{}:", unique()),
    }
}

/// A connected Redis state store under a fresh prefix; panics naming Redis when it is down.
pub async fn redis_state() -> RedisStateStore {
    let settings = redis_settings();
    let store = RedisStateStore::connect(&settings)
        .unwrap_or_else(|e| panic!("Redis at {} is not usable: {e}", settings.url));
    if let Err(e) = store.ping().await {
        panic!(
            "Redis is not reachable at {} ({e}); start it or set TIRAGE_TEST_REDIS_URL",
            settings.url
        );
    }
    store
}

fn redis_error(e: ::redis::RedisError) -> StateError {
    StateError::Unavailable(e.to_string())
}

/// Keys of `store`'s Redis matching `pattern` (SCAN).
pub async fn scan_keys(store: &RedisStateStore, pattern: &str) -> Result<Vec<String>, StateError> {
    let mut conn = store.conn();
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
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
    url: String,
    prefix: String,
}

impl RedisCleanup {
    pub fn new(url: &str, prefix: &str) -> Self {
        assert!(!prefix.is_empty(), "refusing to clean up an empty prefix");
        RedisCleanup {
            url: url.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    pub fn of(settings: &RedisSettings) -> Self {
        RedisCleanup::new(&settings.url, &settings.key_prefix)
    }

    /// SCAN + DEL over a blocking connection of its own: it runs in `drop`, where nothing
    /// can be awaited.
    fn delete_all(&self) -> ::redis::RedisResult<()> {
        let client = ::redis::Client::open(self.url.as_str())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(&mut conn)?;
            if !keys.is_empty() {
                let _: i64 = ::redis::cmd("DEL").arg(&keys).query(&mut conn)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
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
        let store = redis_state().await;
        RedisHarness {
            _cleanup: RedisCleanup::new(&redis_url(), store.key_prefix()),
            store: Arc::new(store),
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
        let pattern = format!("{}batch:{}*", self.store.key_prefix(), batch.id);
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
