//! Presigned uploads: tickets, the browser's PUT straight to the object store (done by the
//! backend), then `complete`, which is safe to retry.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Backend, Sent, TestApp, expect_error, jpeg, json_of};

pub async fn presigned_upload_then_complete(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| s.limits.max_file_bytes = 1_000_000).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let path = format!("/v1/batches/{id}/uploads");
    let file = |size: Value, content_type: &str| json!({"files": [{"filename": "a.jpg", "size": size, "content_type": content_type}]});

    for (body, status, code) in [
        (json!({"files": []}), 422, "invalid_files"),
        (file(json!(10), "text/html"), 422, "invalid_files"),
        (file(json!(0), "image/jpeg"), 422, "invalid_files"),
        (
            json!({"files": [{"filename": "a.jpg", "content_type": "image/jpeg"}]}),
            422,
            "invalid_body",
        ),
        (file(json!(2_000_000), "image/jpeg"), 413, "file_too_large"),
    ] {
        let res = app.post_json(&token, &path, &body).await;
        expect_error(res, status, code).await;
    }

    let photo = jpeg(40, 30);
    let size = photo.len();
    let res = app
        .post_json(
            &token,
            &path,
            &json!({"files": [
                {"filename": "a.jpg", "size": size, "content_type": "image/jpeg"},
                {"filename": "b.jpg", "size": size, "content_type": "image/jpeg"}
            ]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body = json_of(res).await;
    let tickets = body["uploads"].as_array().unwrap().clone();
    assert_eq!(tickets.len(), 2);
    assert_eq!(tickets[0]["method"], "PUT");
    assert!(tickets[0]["url"].as_str().unwrap().starts_with("http"));
    assert!(tickets[0]["expires_at"].as_str().is_some());
    let first = tickets[0]["photo_id"].as_str().unwrap();
    let complete = |photo: &str| {
        app.post(&token, &format!("/v1/batches/{id}/photos/{photo}/complete"))
            .sent()
    };

    // Nothing uploaded yet: 409, and the ticket stays usable.
    expect_error(complete(first).await, 409, "upload_missing").await;
    assert_eq!(app.batch(&token, id).await["total"], 0);

    b.upload_ticket(&app.ports, &tickets[0], photo.clone())
        .await;
    let res = complete(first).await;
    assert_eq!(res.status(), 202);
    let body = json_of(res).await;
    assert_eq!(body["photos"][0]["id"], first);
    assert_eq!(body["photos"][0]["filename"], "a.jpg");
    let jobs = app.take_jobs(1).await;
    assert_eq!(jobs[0].photo_id.to_string(), first);
    assert_eq!(app.batch(&token, id).await["total"], 1);

    // Completing again (a retry) is harmless: counted once, and a photo still queued gets
    // its job again, in case the first attempt never published it.
    assert_eq!(complete(first).await.status(), 202);
    assert_eq!(app.batch(&token, id).await["total"], 1);
    let again = app.take_jobs(1).await;
    assert_eq!(again[0].photo_id.to_string(), first);
    // Once the photo is done, a late retry publishes nothing more.
    app.finish(&jobs[0]).await;
    assert_eq!(complete(first).await.status(), 202);
    let res = complete(&Uuid::new_v4().to_string()).await;
    expect_error(res, 404, "upload_not_found").await;
    let b_ticket = &tickets[1];
    b.upload_ticket(&app.ports, b_ticket, photo.clone()).await;
    let second = b_ticket["photo_id"].as_str().unwrap();
    assert_eq!(complete(second).await.status(), 202);
    let next = app.take_jobs(1).await;
    assert_eq!(
        next[0].photo_id.to_string(),
        second,
        "no job was published for the done photo"
    );
}
