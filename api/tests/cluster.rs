//! The API suite on the production adapters: real Redis, RabbitMQ and Garage (S3), each test
//! under its own key prefix, object prefix and queues (`tirage_testkit`). A service
//! that is missing fails the test with a message naming it. `redis_cluster.rs` runs the
//! same suite with a Redis Cluster for state.

// Tests may unwrap (the workspace denies it in library code only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use tirage_testkit as testing;

use common::services::{ApiProcess, Services};
use common::{Sent, json_of};

api_suite!(Services::single_redis());

/// The binary itself: settings from the environment, `/readyz` on the real services, and
/// SIGTERM ends it with status 0 after finishing the request in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_and_stops_cleanly_on_sigterm() {
    let mut api = ApiProcess::start(&testing::redis_settings()).await;
    let base = api.base.clone();
    let client = reqwest::Client::new();

    // A request in flight when SIGTERM arrives: an event stream that lives 2 s.
    let token = json_of(client.post(format!("{base}/v1/sessions")).sent().await).await;
    let token = token["token"].as_str().unwrap().to_owned();
    let batch = client
        .post(format!("{base}/v1/batches"))
        .bearer_auth(&token)
        .sent()
        .await;
    let batch = json_of(batch).await;
    let events = client
        .get(format!(
            "{base}/v1/batches/{}/events",
            batch["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .sent()
        .await;
    assert_eq!(events.status(), 200);
    let pid = api.child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let body = tokio::time::timeout(Duration::from_secs(10), events.text())
        .await
        .expect("the in-flight stream ends within the grace period")
        .expect("the in-flight stream is finished, not cut");
    assert!(body.contains("event: progress"), "{body}");
    let status = tokio::time::timeout(Duration::from_secs(15), api.child.wait())
        .await
        .expect("tirage-api exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    // No longer accepting.
    assert!(client.get(format!("{base}/healthz")).send().await.is_err());
}
