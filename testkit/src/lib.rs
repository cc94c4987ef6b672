//! Test support shared by every crate's tests: connection settings for the real services
//! (from `TIRAGE_TEST_*`, each test under its own unique prefix), and the contract suites
//! every adapter of a port must pass.
//!
//! Panicking is how this module reports: it only ever runs inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod amqp;
pub mod clock;
pub mod contract_objects;
pub mod contract_queue;
pub mod contract_state;
pub mod env;
pub mod inprocess;
pub mod intercepted;
pub mod memory;
pub mod objects;
pub mod otlp;
pub mod outage;
pub mod receivers;
pub mod redis;

// The helpers' historical paths (`testing::redis_state()`, `testing::AmqpHarness`, …).
pub use amqp::{
    AmqpHarness, AmqpTestExt, amqp_queue, amqp_queue_with, amqp_settings, amqp_settings_of,
};
pub use clock::ManualClock;
pub use env::{
    DEFAULT_AMQP_URL, DEFAULT_REDIS_URL, S3Env, TEST_EVENTS_EXCHANGE, TEST_QUEUE_EXPIRES_MS,
    amqp_url, redis_cluster_urls, redis_url, s3_env, unique,
};
pub use inprocess::{InProcessHarness, InProcessTestExt};
pub use memory::MemoryHarness;
pub use objects::{FS_TEST_BASE_URL, FsHarness, FsPresigned, parse_fs_presigned};
pub use objects::{S3Harness, s3_settings, s3_store};
pub use receivers::SilentReceiver;
pub use redis::{
    RedisCleanup, RedisHarness, redis_cluster_settings, redis_cluster_state, redis_settings,
    redis_state, redis_state_on,
};
