//! The API suite on the production adapters: real Redis, RabbitMQ and Garage (S3), each test
//! under its own key prefix, object prefix and queues (`tirage_shared::testing`). A service
//! that is missing fails the test with a message naming it.

// Tests may unwrap (the workspace denies it in library code only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tirage_api::{PortNames, Ports};
use tirage_shared::ports::StateStore;
use tirage_shared::testing;

use common::{Backend, Sent, TestDeps, json_of};

struct Cluster;

#[async_trait]
impl Backend for Cluster {
    async fn ports(&self) -> TestDeps {
        let (state, queue, objects) = tokio::join!(
            testing::redis_state(),
            testing::amqp_queue(),
            testing::s3_store()
        );
        let redis_keys = testing::RedisCleanup::new(&testing::redis_url(), state.key_prefix());
        TestDeps {
            ports: Ports {
                state: Arc::new(state),
                objects: Arc::new(objects),
                queue: Arc::new(queue),
                names: PortNames::production(),
            },
            guard: Box::new(redis_keys),
        }
    }

    async fn dead_state(&self) -> Arc<dyn StateStore> {
        common::dead_redis().await
    }

    /// What a browser does: PUT the bytes to the presigned URL with the given headers.
    async fn upload_ticket(&self, _ports: &Ports, ticket: &Value, body: Vec<u8>) {
        assert_eq!(ticket["method"], "PUT");
        let mut req = reqwest::Client::new().put(ticket["url"].as_str().unwrap());
        // reqwest states the body's length itself; the store checks it against the ticket's.
        for (name, value) in ticket["headers"].as_object().unwrap() {
            if !name.eq_ignore_ascii_case("content-length") {
                req = req.header(name.as_str(), value.as_str().unwrap());
            }
        }
        let res = req
            .body(body)
            .send()
            .await
            .expect("S3 (Garage) presigned PUT");
        assert!(
            res.status().is_success(),
            "presigned PUT answered {}: {:?}",
            res.status(),
            res.text().await
        );
    }
}

api_suite!(Cluster);

/// The binary itself: settings from the environment, `/readyz` on the real services, and
/// SIGTERM ends it with status 0 after finishing the request in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_and_stops_cleanly_on_sigterm() {
    let redis = testing::redis_settings();
    let amqp = testing::amqp_settings();
    let s3 = testing::s3_settings();
    let port = common::closed_port();
    let secret = |s: &secrecy::SecretString| secrecy::ExposeSecret::expose_secret(s).to_owned();
    let env = [
        ("TIRAGE__API__PORT", port.to_string()),
        ("TIRAGE__API__SHUTDOWN_TIMEOUT_SECS", "10".into()),
        ("TIRAGE__API__EVENTS_MAX_SECS", "2".into()),
        ("TIRAGE__REDIS__URL", redis.url.clone()),
        ("TIRAGE__REDIS__KEY_PREFIX", redis.key_prefix.clone()),
        ("TIRAGE__AMQP__URL", secret(&amqp.url)),
        ("TIRAGE__AMQP__QUEUE_PREFIX", amqp.queue_prefix.clone()),
        (
            "TIRAGE__AMQP__EVENTS_EXCHANGE",
            amqp.events_exchange.clone(),
        ),
        (
            "TIRAGE__AMQP__QUEUE_EXPIRES_MS",
            testing::TEST_QUEUE_EXPIRES_MS.to_string(),
        ),
        ("TIRAGE__S3__ENDPOINT", s3.endpoint.clone()),
        ("TIRAGE__S3__REGION", s3.region.clone()),
        ("TIRAGE__S3__BUCKET", s3.bucket.clone()),
        ("TIRAGE__S3__ACCESS_KEY_ID", s3.access_key_id.clone()),
        (
            "TIRAGE__S3__SECRET_ACCESS_KEY",
            secret(&s3.secret_access_key),
        ),
        ("TIRAGE__S3__KEY_PREFIX", s3.key_prefix.clone()),
        ("TIRAGE__LOG__LEVEL", "warn".into()),
    ];
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tirage-api"))
        .envs(env)
        .kill_on_drop(true)
        .spawn()
        .expect("start tirage-api");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(res) = client.get(format!("{base}/readyz")).send().await {
            assert_eq!(res.status(), 200, "readyz: {:?}", res.text().await);
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "tirage-api did not listen on port {port}");

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
    let pid = child.id().unwrap().to_string();
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
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("tirage-api exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    // No longer accepting.
    assert!(client.get(format!("{base}/healthz")).send().await.is_err());
}
