//! What one client may make the service keep and do, by what it costs: bytes stored per
//! session and per client address (presigned tickets by their announced sizes, multipart
//! parts by what they stored), kept counted after a delete until the sweep; and an archive
//! paid for with a request per file it holds.

use serde_json::json;

use super::caps::files;

use crate::common::{Backend, Sent, TestApp, expect_error, jpeg, json_of};

async fn batch_id(app: &TestApp, token: &str) -> String {
    app.create_batch(token, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn stored_bytes_are_capped_per_session_and_address(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| {
        s.limits.stored_bytes_per_session = 3000;
        s.limits.stored_bytes_per_address = 5000;
    })
    .await;
    let token = app.session().await;
    let id = batch_id(&app, &token).await;
    let uploads = format!("/v1/batches/{id}/uploads");

    // Tickets count by their announced sizes, all of a request or none.
    let res = app.post_json(&token, &uploads, &files(2, 1000)).await;
    assert_eq!(res.status(), 201);
    let res = app.post_json(&token, &uploads, &files(2, 1000)).await;
    let body = expect_error(res, 409, "storage_quota_exceeded").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("session") && message.contains("3000"),
        "{message}"
    );
    let res = app.post_json(&token, &uploads, &files(1, 1000)).await;
    assert_eq!(res.status(), 201, "exactly the quota");
    // A multipart upload with no room left is refused before its body is stored.
    let res = app.upload(&token, &id, &[("m.jpg", jpeg(20, 20))]).await;
    expect_error(res, 409, "storage_quota_exceeded").await;
    let batch = json_of(app.get(&token, &format!("/v1/batches/{id}")).sent().await).await;
    assert_eq!(batch["total"], 0, "{batch}");

    // A new session from the same address brings only what the address has left.
    let other = app.session().await;
    let other_batch = batch_id(&app, &other).await;
    let other_uploads = format!("/v1/batches/{other_batch}/uploads");
    let res = app.post_json(&other, &other_uploads, &files(2, 1000)).await;
    assert_eq!(res.status(), 201);
    let res = app.post_json(&other, &other_uploads, &files(1, 1)).await;
    let body = expect_error(res, 409, "storage_quota_exceeded").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("address") && message.contains("5000"),
        "{message}"
    );

    // Deleting a batch does not give its bytes back: its tickets stay valid, its objects
    // stored, until the sweep.
    let res = app
        .delete(&token, &format!("/v1/batches/{id}"))
        .sent()
        .await;
    assert_eq!(res.status(), 204);
    let fresh = batch_id(&app, &token).await;
    let res = app
        .post_json(
            &token,
            &format!("/v1/batches/{fresh}/uploads"),
            &files(1, 1),
        )
        .await;
    expect_error(res, 409, "storage_quota_exceeded").await;
}

pub async fn multipart_parts_are_charged_by_what_they_store(b: &impl Backend) {
    let photo = jpeg(40, 30);
    let size = photo.len() as u64;
    // Room for two parts, not three.
    let app = TestApp::spawn_with(b, |s| {
        s.limits.stored_bytes_per_session = 2 * size + size / 2;
    })
    .await;
    let token = app.session().await;
    let id = batch_id(&app, &token).await;
    let res = app.upload(&token, &id, &[("a.jpg", photo.clone())]).await;
    assert_eq!(res.status(), 202);
    // The second part of this upload passes the quota: the whole upload is refused, and
    // its first part's bytes come back with it.
    let two = [("b.jpg", photo.clone()), ("c.jpg", photo.clone())];
    let res = app.upload(&token, &id, &two).await;
    expect_error(res, 409, "storage_quota_exceeded").await;
    let res = app.upload(&token, &id, &[("d.jpg", photo.clone())]).await;
    assert_eq!(
        res.status(),
        202,
        "the refused upload's first part was given back"
    );
    let batch = json_of(app.get(&token, &format!("/v1/batches/{id}")).sent().await).await;
    assert_eq!(batch["total"], 2, "{batch}");
}

pub async fn an_archive_costs_a_request_per_file(b: &impl Backend) {
    // Two photos at two sizes: four files. The budget pays for the batch, the upload, one
    // archive (4) and three requests more.
    let app = TestApp::spawn_with(b, |s| {
        s.rate_limit.enabled = true;
        s.rate_limit.requests = 9;
    })
    .await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({"sizes": [32, 24]})).await;
    let id = batch["id"].as_str().unwrap().to_owned();
    app.upload_ok(&token, &id, 2).await;
    for job in app.take_jobs(2).await {
        app.finish(&job).await;
    }
    let archive = format!("/v1/batches/{id}/archive");
    let res = app.get(&token, &archive).sent().await;
    assert_eq!(res.status(), 200);
    let _ = res.bytes().await;
    // Seven used; a second archive would bring the session to ten.
    let res = app.get(&token, &archive).sent().await;
    expect_error(res, 429, "rate_limited").await;
}
