//! The StateStore contract against the in-memory store, Redis, and a Redis Cluster (three
//! masters, three replicas: `scripts/redis-cluster.sh up`).

mod memory {
    tirage_testkit::state_store_contract!(tirage_testkit::MemoryHarness::default());
}

mod redis {
    tirage_testkit::state_store_contract!(tirage_testkit::RedisHarness::new().await);
}

mod redis_cluster {
    tirage_testkit::state_store_contract!(tirage_testkit::RedisHarness::cluster().await);
}
