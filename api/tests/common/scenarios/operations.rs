//! What operators and tooling use: health, readiness, metrics, the OpenAPI document, request
//! ids and the JSON answer for routes that do not exist.

use serde_json::json;
use uuid::Uuid;

use crate::common::{Backend, Sent, TestApp, expect_error, json_of};

pub async fn operations_endpoints_answer(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    assert_eq!(app.fetch("/healthz").await.status(), 200);

    let res = app.fetch("/readyz").await;
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(body["status"], "ready");
    for name in [
        &app.ports.names.state,
        &app.ports.names.queue,
        &app.ports.names.objects,
    ] {
        assert_eq!(body["checks"][name.as_str()], "ok", "{body}");
    }

    let res = app.fetch("/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc = json_of(res).await;
    for path in [
        "/v1/sessions",
        "/v1/batches",
        "/v1/batches/{batch_id}",
        "/v1/batches/{batch_id}/photos",
        "/v1/batches/{batch_id}/uploads",
        "/v1/batches/{batch_id}/photos/{photo_id}/complete",
        "/v1/batches/{batch_id}/close",
        "/v1/batches/{batch_id}/events",
        "/v1/batches/{batch_id}/photos/{photo_id}/{size}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert_eq!(doc["x-error-codes"]["too_many_photos"], 409);
    let responses = &doc["paths"]["/v1/batches/{batch_id}/photos"]["post"]["responses"];
    for status in [
        "202", "401", "404", "409", "413", "415", "422", "429", "503",
    ] {
        assert!(
            responses.get(status).is_some(),
            "upload lacks {status}: {responses}"
        );
    }

    // A request through a templated route, then the metrics must show its pattern.
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    app.batch(&token, batch["id"].as_str().unwrap()).await;
    app.upload_ok(&token, batch["id"].as_str().unwrap(), 1)
        .await;
    // And an error answer, counted by its code.
    let missing = format!("/v1/batches/{}", uuid::Uuid::new_v4());
    let resp = app
        .client
        .get(app.url(&missing))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let text = app.fetch("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"tirage_api_http_requests_total{method="GET",route="/v1/batches/{batch_id}",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tirage_api_http_error_answers_total{code="batch_not_found",route="/v1/batches/{batch_id}"} 1"#),
        "{text}"
    );
    assert!(text.contains("tirage_api_http_request_duration_seconds_bucket"));
    assert!(
        text.contains("tirage_api_job_publish_duration_seconds_count 1"),
        "{text}"
    );
    let uploaded = text
        .lines()
        .find_map(|l| l.strip_prefix("tirage_api_upload_bytes_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(uploaded > 100, "bytes uploaded {uploaded}");
}

pub async fn unknown_routes_are_json_404(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let res = app
        .anon(reqwest::Method::GET, "/nope")
        .header("X-Request-Id", "from-nginx-42")
        .sent()
        .await;
    assert_eq!(res.headers()["x-request-id"], "from-nginx-42");
    expect_error(res, 404, "not_found").await;
    // A generated id when none (or a hostile one) comes in.
    let res = app
        .anon(reqwest::Method::GET, "/healthz")
        .header("X-Request-Id", "bad id\twith spaces")
        .sent()
        .await;
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(Uuid::parse_str(&id).is_ok(), "{id}");
    // A batch id that is no UUID names nothing.
    let token = app.session().await;
    let res = app.get(&token, "/v1/batches/not-a-uuid").sent().await;
    expect_error(res, 404, "not_found").await;
}

/// A documented path asked with a method it does not have: `405`, the common error body,
/// and `Allow` naming the methods it has.
pub async fn wrong_methods_are_405_with_allow(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.session().await;
    let batch = format!("/v1/batches/{}", Uuid::new_v4());
    for (method, path, allow) in [
        (reqwest::Method::GET, "/v1/batches".to_owned(), "POST"),
        (reqwest::Method::PUT, batch.clone(), "GET, DELETE"),
        (reqwest::Method::DELETE, "/healthz".to_owned(), "GET"),
        (
            reqwest::Method::GET,
            format!("{batch}/photos/{}/complete", Uuid::new_v4()),
            "POST",
        ),
    ] {
        let res = app.authed(method.clone(), &token, &path).sent().await;
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        expect_error(res, 405, "method_not_allowed").await;
    }
    // Paths that are not documented stay 404.
    let res = app.anon(reqwest::Method::PUT, "/nope").sent().await;
    expect_error(res, 404, "not_found").await;
}
