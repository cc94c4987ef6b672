//! A dependency that fails: the broker refusing jobs, the state store or the object store
//! gone. Requests that need it answer 503 with its code, nothing is miscounted, and
//! `/readyz` names it.

use std::sync::Arc;

use serde_json::json;
use tirage_api::Ports;
use tirage_core::model::BatchState;
use uuid::Uuid;

use crate::common::{Backend, RefusingQueue, Sent, TestApp, dead_s3, expect_error, jpeg, json_of};

pub async fn unconfirmed_jobs_are_recorded_failed_and_503(b: &impl Backend) {
    let test_deps = b.ports().await;
    let real_queue = test_deps.ports.queue.clone();
    let ports = Ports {
        queue: Arc::new(RefusingQueue(real_queue)),
        ..test_deps.ports
    };
    let app = TestApp::on(ports, test_deps.guard, |_| {});
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let res = app
        .upload(
            &token,
            id,
            &[("a.jpg", jpeg(20, 20)), ("b.jpg", jpeg(20, 20))],
        )
        .await;
    expect_error(res, 503, "job_queue_unavailable").await;
    // Counted and failed, so the batch still completes once closed.
    let batch = app.batch(&token, id).await;
    assert_eq!(
        (batch["total"].as_u64(), batch["failed"].as_u64()),
        (Some(2), Some(2))
    );
    for p in app.photos(&token, id).await["photos"].as_array().unwrap() {
        assert_eq!(p["state"], "failed");
        assert_eq!(p["error"], "enqueue_failed");
    }
    // Closing completes the batch; handing the completion to the queue fails: 503, and the
    // batch stays completed so a retry can hand it over.
    let res = app
        .post(&token, &format!("/v1/batches/{id}/close"))
        .sent()
        .await;
    expect_error(res, 503, "job_queue_unavailable").await;
    assert_eq!(app.batch(&token, id).await["state"], "completed");
    let stored = app
        .ports
        .state
        .get_batch(Uuid::parse_str(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, BatchState::Completed);
    assert_eq!((stored.done, stored.failed, stored.total), (0, 2, 2));
}

/// A retry whose extra publish is refused (a repeated multipart upload with its
/// `Idempotency-Key`, a repeated `complete`) answers 503 but leaves the photo queued: the
/// first attempt's job is in the queue, and booking `enqueue_failed` would make it do
/// nothing.
pub async fn a_retry_whose_publish_fails_leaves_a_queued_photo_queued(b: &impl Backend) {
    let test_deps = b.ports().await;
    let refusing = Ports {
        queue: Arc::new(RefusingQueue(test_deps.ports.queue.clone())),
        ..test_deps.ports.clone()
    };
    let app = TestApp::on(test_deps.ports, test_deps.guard, |_| {});
    // The same stores behind a broker that refuses every job.
    let app_refused = TestApp::on(refusing, Box::new(()), |_| {});
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let upload = |app: &TestApp| {
        app.upload_request(&token, id, &[("a.jpg", jpeg(20, 20))])
            .header("Idempotency-Key", "retry-1")
            .sent()
    };
    assert_eq!(upload(&app).await.status(), 202);
    let photo = jpeg(24, 24);
    let announce = json!({"files": [
        {"filename": "b.jpg", "size": photo.len(), "content_type": "image/jpeg"}
    ]});
    let path = format!("/v1/batches/{id}/uploads");
    let tickets = json_of(app.post_json(&token, &path, &announce).await).await;
    let ticket = &tickets["uploads"][0];
    b.upload_ticket(&app.ports, ticket, photo).await;
    let ticket = ticket["photo_id"].as_str().unwrap();
    let complete = format!("/v1/batches/{id}/photos/{ticket}/complete");
    assert_eq!(app.post(&token, &complete).sent().await.status(), 202);

    expect_error(upload(&app_refused).await, 503, "job_queue_unavailable").await;
    let res = app_refused.post(&token, &complete).sent().await;
    expect_error(res, 503, "job_queue_unavailable").await;

    let batch = app.batch(&token, id).await;
    assert_eq!(
        (batch["total"].as_u64(), batch["failed"].as_u64()),
        (Some(2), Some(0)),
        "{batch}"
    );
    for p in app.photos(&token, id).await["photos"].as_array().unwrap() {
        assert_eq!(p["state"], "queued", "{p}");
    }
}

pub async fn state_outage_is_503_and_readyz_names_it(b: &impl Backend) {
    let test_deps = b.ports().await;
    let dead = b.dead_state().await;
    let ports = Ports {
        state: dead,
        ..test_deps.ports
    };
    let name = ports.names.state.clone();
    let app = TestApp::on(ports, test_deps.guard, |_| {});
    let res = app.anon(reqwest::Method::POST, "/v1/sessions").sent().await;
    expect_error(res, 503, "state_store_unavailable").await;
    let res = app.post("some-token", "/v1/batches").sent().await;
    expect_error(res, 503, "state_store_unavailable").await;

    let res = app.fetch("/readyz").await;
    assert_eq!(res.status(), 503);
    let body = json_of(res).await;
    assert_eq!(body["error"]["code"], "dependency_unavailable");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&name),
        "{body}"
    );
    assert_ne!(body["checks"][&name], "ok", "{body}");
    assert_eq!(body["checks"][&app.ports.names.queue], "ok", "{body}");
    assert_eq!(body["checks"][&app.ports.names.objects], "ok", "{body}");
    // Liveness does not depend on it.
    assert_eq!(app.fetch("/healthz").await.status(), 200);
}

pub async fn object_store_outage_is_503_and_nothing_is_counted(b: &impl Backend) {
    let test_deps = b.ports().await;
    let ports = Ports {
        objects: dead_s3().await,
        names: tirage_api::PortNames {
            objects: "s3".into(),
            ..test_deps.ports.names.clone()
        },
        ..test_deps.ports
    };
    let app = TestApp::on(ports, test_deps.guard, |_| {});
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let res = app.upload(&token, id, &[("a.jpg", jpeg(20, 20))]).await;
    expect_error(res, 503, "object_store_unavailable").await;
    assert_eq!(app.batch(&token, id).await["total"], 0);

    let res = app.fetch("/readyz").await;
    assert_eq!(res.status(), 503);
    let body = json_of(res).await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("s3"),
        "{body}"
    );
    assert_eq!(body["checks"][&app.ports.names.state], "ok", "{body}");
}
