//! End-to-end tests of the Tirage cluster, and what they share. `tests/cluster.rs` runs
//! `deploy/local/cluster.sh` (nginx, several API replicas, several workers, Redis, RabbitMQ,
//! Garage) and drives it through nginx with an HTTP client, as a user would;
//! `tests/faults.rs` does the same while it kills, stops and freezes the processes under it;
//! `tests/compose.rs` runs docker-compose.yml in podman containers (`scripts/compose.sh`).
//! This library is their common part: the cluster's life ([`cluster`]), the client side of
//! the API with the checks of a finished batch ([`api`]), and real photographs
//! ([`photos`]).

// Test support: a failed step panics with its message, which is the calling test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod api;
pub mod cluster;
pub mod photos;

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}
