//! End-to-end tests of the Tirage cluster: `tests/cluster.rs` runs `deploy/local/cluster.sh`
//! (nginx, several API replicas, several workers, Redis, RabbitMQ, Garage) and drives it
//! through nginx with an HTTP client, as a user would. The crate has no code of its own.
