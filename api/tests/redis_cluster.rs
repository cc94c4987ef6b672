//! The API suite with a Redis Cluster for state (three masters, three replicas:
//! `scripts/redis-cluster.sh up`, which scripts/test.sh runs), RabbitMQ and Garage as in
//! `cluster.rs`. Every scenario runs unchanged: no script may touch keys of two slots.

// Tests may unwrap (the workspace denies it in library code only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::services::{ApiProcess, Services};
use common::{Sent, json_of};
use tirage_testkit as testing;

api_suite!(Services::redis_cluster());

/// The binary takes the cluster's seeds from one environment variable, comma-separated,
/// and serves from the cluster: a session, a batch, and the batch read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_runs_on_cluster_urls_from_the_environment() {
    let api = ApiProcess::start(&testing::redis_cluster_settings()).await;
    let client = reqwest::Client::new();
    let session = json_of(
        client
            .post(format!("{}/v1/sessions", api.base))
            .sent()
            .await,
    )
    .await;
    let token = session["token"].as_str().unwrap();
    let batch = client
        .post(format!("{}/v1/batches", api.base))
        .bearer_auth(token)
        .sent()
        .await;
    assert_eq!(batch.status(), 201);
    let id = json_of(batch).await["id"].as_str().unwrap().to_owned();
    let read = client
        .get(format!("{}/v1/batches/{id}", api.base))
        .bearer_auth(token)
        .sent()
        .await;
    assert_eq!(read.status(), 200);
    assert_eq!(json_of(read).await["state"], "open");
}
