//! The StateStore contract against the in-memory store, Redis, and a Redis Cluster (three
//! masters, three replicas: `scripts/redis-cluster.sh up`).

#[cfg(not(all(feature = "testing", feature = "redis")))]
#[test]
fn contract_needs_features() {
    panic!("run the contract suites with `--all-features` (needs `testing` and `redis`)");
}

#[cfg(all(feature = "testing", feature = "redis"))]
mod memory {
    tirage_shared::state_store_contract!(tirage_shared::testing::MemoryHarness::default());
}

#[cfg(all(feature = "testing", feature = "redis"))]
mod redis {
    tirage_shared::state_store_contract!(tirage_shared::testing::RedisHarness::new().await);
}

#[cfg(all(feature = "testing", feature = "redis"))]
mod redis_cluster {
    tirage_shared::state_store_contract!(tirage_shared::testing::RedisHarness::cluster().await);
}
