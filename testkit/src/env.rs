//! Where the real services are, from `TIRAGE_TEST_*` (with the local defaults), and unique
//! names so tests never share state.

use uuid::Uuid;

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

/// The seed URLs of the test Redis Cluster (`TIRAGE_TEST_REDIS_CLUSTER_URLS`,
/// comma-separated), by default the six nodes `scripts/redis-cluster.sh up` starts.
pub fn redis_cluster_urls() -> Vec<String> {
    match std::env::var("TIRAGE_TEST_REDIS_CLUSTER_URLS") {
        Ok(urls) if !urls.trim().is_empty() => {
            urls.split(',').map(|u| u.trim().to_owned()).collect()
        }
        _ => (17001..=17006)
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect(),
    }
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
