//! Dependency outages on the production wiring (`Application::build`): the API
//! talks to the real Redis, RabbitMQ and Garage through links the test cuts and restores
//! (`tirage_testkit::outage`). While a service is away, requests that need it answer
//! 503 with its code and nothing is counted; once it is back, the same process serves again
//! without a restart.

// Tests may unwrap (the workspace denies it in library code only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tirage_amqp::AmqpSettings;
use tirage_api::{Application, PortNames, Ports};
use tirage_redis::{RedisSettings, RedisStateStore};
use tirage_s3::{S3ObjectStore, S3Settings};
use tirage_testkit::{self as testing, outage::ServiceLink, outage::url_addr, outage::url_via};

use common::{Sent, TestApp, expect_error, jpeg, json_of};

/// The links to the three services, and settings that reach them only through the links.
struct Links {
    redis: ServiceLink,
    amqp: ServiceLink,
    s3: ServiceLink,
    settings: tirage_api::Settings,
}

async fn links(broker_up: bool) -> Links {
    let mut settings = common::test_settings();
    settings.services.redis = testing::redis_settings();
    settings.services.amqp = testing::amqp_settings();
    settings.services.s3 = testing::s3_settings();
    let amqp_url = secrecy::ExposeSecret::expose_secret(&settings.services.amqp.url).to_owned();
    let redis = ServiceLink::start(&url_addr(&settings.services.redis.url)).await;
    let amqp = if broker_up {
        ServiceLink::start(&url_addr(&amqp_url)).await
    } else {
        ServiceLink::start_cut(&url_addr(&amqp_url)).await
    };
    let s3 = ServiceLink::start(&url_addr(&settings.services.s3.endpoint)).await;
    settings.services.redis.url = url_via(&settings.services.redis.url, &redis.addr());
    settings.services.amqp.url = url_via(&amqp_url, &amqp.addr()).into();
    settings.services.s3.endpoint = url_via(&settings.services.s3.endpoint, &s3.addr());
    Links {
        redis,
        amqp,
        s3,
        settings,
    }
}

/// The API as the binary builds it ([`Application::build`]), on the links; the test's own
/// checks (the queued jobs) use direct connections to the same queue.
async fn spawn(links: &Links) -> TestApp {
    let app = Application::build(links.settings.clone())
        .await
        .expect("the API starts even with a service down");
    let s = &links.settings;
    let ports = Ports {
        state: Arc::new(
            RedisStateStore::connect(&RedisSettings {
                url: testing::redis_url(),
                ..s.services.redis.clone()
            })
            .unwrap(),
        ),
        objects: Arc::new(S3ObjectStore::new(&S3Settings {
            endpoint: testing::s3_env().endpoint,
            ..s.services.s3.clone()
        })),
        queue: Arc::new(
            testing::amqp_queue_with(&AmqpSettings {
                url: testing::amqp_url().into(),
                ..s.services.amqp.clone()
            })
            .await,
        ),
        names: PortNames::production(),
    };
    TestApp::running(app, links.settings.clone(), ports, Box::new(()))
}

/// Polls `attempt` until it returns `Some`, for at most 20 s.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, attempt: impl Fn() -> F) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: not within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let res = app.fetch("/readyz").await;
    let status = res.status().as_u16();
    (status, json_of(res).await)
}

/// Waits until `/readyz` reports `dependency` as failing: the adapters have noticed.
async fn noticed(app: &TestApp, dependency: &str) -> Value {
    eventually(&format!("readyz naming {dependency}"), || async {
        let (status, body) = readyz(app).await;
        (status == 503 && body["checks"][dependency] != "ok").then_some(body)
    })
    .await
}

async fn upload_status(app: &TestApp, token: &str, batch: &str) -> u16 {
    app.upload(token, batch, &[("a.jpg", jpeg(40, 30))])
        .await
        .status()
        .as_u16()
}

/// Cuts `link`: once `/readyz` names `dependency`, an upload answers 503 with `code` and
/// counts nothing. Then restores it and waits until uploads succeed again.
async fn uploads_refused_while_cut(
    app: &TestApp,
    (token, batch): (&str, &str),
    link: &ServiceLink,
    dependency: &str,
    code: &str,
) {
    let total = app.batch(token, batch).await["total"].clone();
    link.cut();
    noticed(app, dependency).await;
    let res = app.upload(token, batch, &[("a.jpg", jpeg(40, 30))]).await;
    expect_error(res, 503, code).await;
    assert_eq!(app.batch(token, batch).await["total"], total);
    link.restore().await;
    eventually(&format!("upload after {dependency} returns"), || async {
        (upload_status(app, token, batch).await == 202).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_while_the_broker_is_down_and_publishes_once_it_is_back() {
    let links = links(false).await;
    let app = spawn(&links).await;

    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_ne!(body["checks"]["rabbitmq"], "ok", "{body}");
    assert_eq!(body["checks"]["redis"], "ok", "{body}");

    // What needs no broker works; an upload is refused before anything is stored or counted.
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let res = app.upload(&token, id, &[("a.jpg", jpeg(40, 30))]).await;
    expect_error(res, 503, "job_queue_unavailable").await;
    assert_eq!(app.batch(&token, id).await["total"], 0);

    links.amqp.restore().await;
    eventually("readyz after the broker returns", || async {
        (readyz(&app).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(upload_status(&app, &token, id).await, 202);
    let jobs = app.take_jobs(1).await;
    assert_eq!(jobs[0].batch_id.to_string(), id);
    assert_eq!(app.batch(&token, id).await["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outage_is_503_with_its_code_and_heals_by_itself() {
    let links = links(true).await;
    let app = spawn(&links).await;
    assert_eq!(readyz(&app).await.0, 200);
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap().to_owned();
    assert_eq!(upload_status(&app, &token, &id).await, 202);
    let mut expected_total = 1;

    // Redis: sessions and batches are unreadable, so every /v1 call is 503.
    links.redis.cut();
    let body = noticed(&app, "redis").await;
    assert_eq!(body["checks"]["rabbitmq"], "ok", "{body}");
    let res = app.get(&token, &format!("/v1/batches/{id}")).sent().await;
    expect_error(res, 503, "state_store_unavailable").await;
    links.redis.restore().await;
    // Each HTTP worker holds its own Redis connection and finds it broken on its next
    // request (answered 503, then reconnected): healed once several in a row answer 200,
    // each on a connection of its own (a pooled one stays with one worker), so that they
    // reach every worker.
    eventually("GET batch after Redis returns", || async {
        for _ in 0..8 {
            let fresh = reqwest::Client::new();
            let url = format!("{}/v1/batches/{id}", app.base);
            let res = fresh.get(url).bearer_auth(&token).sent().await;
            if res.status() != 200 {
                return None;
            }
        }
        Some(())
    })
    .await;

    // RabbitMQ: uploads are refused before storing; reads still work.
    let batch = (token.as_str(), id.as_str());
    uploads_refused_while_cut(
        &app,
        batch,
        &links.amqp,
        "rabbitmq",
        "job_queue_unavailable",
    )
    .await;
    expected_total += 1;

    // S3: uploads fail before the photo is counted.
    uploads_refused_while_cut(&app, batch, &links.s3, "s3", "object_store_unavailable").await;
    expected_total += 1;

    assert_eq!(app.batch(&token, &id).await["total"], expected_total);
    assert_eq!(readyz(&app).await.0, 200);
    // Every accepted photo has its job: none was lost to an outage.
    let jobs = app.take_jobs(expected_total as usize).await;
    assert!(jobs.iter().all(|j| j.batch_id.to_string() == id));
}
