//! Test support shared by every crate's tests: connection settings for the real services
//! (from `TIRAGE_TEST_*`, each test under its own unique prefix), and the contract suites
//! every adapter of a port must pass.
//!
//! Panicking is how this module reports: it only ever runs inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod contract_objects;
pub mod contract_queue;
pub mod contract_state;
pub mod inprocess;
pub mod objects;
pub mod outage;
#[cfg(feature = "redis")]
pub mod redis;

// The helpers' historical paths (`testing::redis_state()`, `testing::AmqpHarness`, …).
#[cfg(feature = "amqp")]
pub use amqp::{AmqpHarness, AmqpTestExt, amqp_queue, amqp_queue_with, amqp_settings};
pub use inprocess::{InProcessHarness, InProcessTestExt};
pub use objects::{FS_TEST_BASE_URL, FsHarness, parse_fs_presigned};
#[cfg(feature = "s3")]
pub use objects::{S3Harness, s3_settings, s3_store};
#[cfg(feature = "redis")]
pub use redis::{RedisCleanup, RedisHarness, redis_settings, redis_state};

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
