//! Batches: options and their validation, ownership, closing and deleting.

use serde_json::json;
use tirage_core::keys;
use tirage_core::model::{MetadataChoice, OutputFormat};
use tirage_ports::{Lane, WorkItem};
use uuid::Uuid;

use crate::common::{Backend, Sent, TestApp, expect_error, jpeg, json_of};

pub async fn batch_options_are_validated(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| s.limits.max_json_bytes = 1024).await;
    let token = app.session().await;

    // Defaults for an empty body and for `{}`.
    let res = app.post(&token, "/v1/batches").sent().await;
    assert_eq!(res.status(), 201);
    let batch = json_of(res).await;
    assert_eq!(batch["sizes"], json!([1080, 720, 360]));
    assert_eq!(batch["format"], "jpeg");
    assert_eq!(batch["quality"], 85);
    assert_eq!(batch["metadata"], "strip");
    assert_eq!(batch["state"], "open");
    assert_eq!(batch["total"], 0);
    assert!(Uuid::parse_str(batch["id"].as_str().unwrap()).is_ok());
    assert!(batch.get("owner").is_none() && batch.get("callback_url").is_none());

    let custom = app
        .create_batch(
            &token,
            json!({"sizes": [512, 128], "format": "webp", "quality": 70, "callback_url": "https://example.com/hook"}),
        )
        .await;
    assert_eq!(custom["sizes"], json!([512, 128]));
    assert_eq!(custom["format"], "webp");

    // AVIF travels to the job, and its renditions are served and named as AVIF.
    let avif = app
        .create_batch(
            &token,
            json!({"sizes": [48], "format": "AVIF", "metadata": "copyright"}),
        )
        .await;
    assert_eq!(avif["format"], "avif");
    assert_eq!(avif["metadata"], "copyright");
    let id = avif["id"].as_str().unwrap();
    let photo = app.upload_ok(&token, id, 1).await.remove(0);
    let job = app.take_jobs(1).await.remove(0);
    assert_eq!(job.options.format, OutputFormat::Avif);
    assert_eq!(job.options.metadata, MetadataChoice::Copyright);
    app.finish(&job).await;
    let res = app
        .get(&token, &format!("/v1/batches/{id}/photos/{photo}/48"))
        .sent()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/avif");

    let cases = [
        (json!({"sizes": []}), "invalid_sizes"),
        (
            json!({"sizes": [100, 200, 300, 400, 500, 600, 700, 800, 900]}),
            "invalid_sizes",
        ),
        (json!({"sizes": [15]}), "invalid_sizes"),
        (json!({"sizes": [8193]}), "invalid_sizes"),
        (json!({"sizes": [720, 720]}), "invalid_sizes"),
        (json!({"quality": 0}), "invalid_quality"),
        (json!({"quality": 101}), "invalid_quality"),
        (json!({"format": "gif"}), "invalid_format"),
        (json!({"metadata": "gps"}), "invalid_metadata"),
        (
            json!({"callback_url": "ftp://example.com/x"}),
            "invalid_callback_url",
        ),
        (json!({"callback_url": "not a url"}), "invalid_callback_url"),
        (json!({"sizes": "big"}), "invalid_body"),
        (json!({"colour": "red"}), "invalid_body"),
    ];
    for (body, code) in cases {
        let res = app.post_json(&token, "/v1/batches", &body).await;
        expect_error(res, 422, code).await;
    }

    for (content_type, body, status, code) in [
        (
            "application/json",
            "{\"sizes\": [720,",
            400,
            "malformed_json",
        ),
        ("text/plain", "sizes=720", 415, "unsupported_media_type"),
    ] {
        let res = app
            .post(&token, "/v1/batches")
            .header("Content-Type", content_type)
            .body(body)
            .sent()
            .await;
        expect_error(res, status, code).await;
    }
    let long = json!({"callback_url": format!("https://example.com/{}", "a".repeat(2000))});
    let res = app.post_json(&token, "/v1/batches", &long).await;
    expect_error(res, 413, "body_too_large").await;
}

pub async fn other_sessions_get_404(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.session().await;
    let other = app.session().await;
    let batch = app.create_batch(&owner, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let photo = app.upload_ok(&owner, id, 1).await.remove(0);

    let paths_get = [
        format!("/v1/batches/{id}"),
        format!("/v1/batches/{id}/photos"),
        format!("/v1/batches/{id}/events"),
        format!("/v1/batches/{id}/photos/{photo}/720"),
    ];
    for path in &paths_get {
        let res = app.get(&other, path).sent().await;
        expect_error(res, 404, "batch_not_found").await;
    }
    let res = app.upload(&other, id, &[("x.jpg", jpeg(32, 32))]).await;
    expect_error(res, 404, "batch_not_found").await;
    for path in [
        format!("/v1/batches/{id}/close"),
        format!("/v1/batches/{id}/photos/{photo}/complete"),
    ] {
        let res = app.post(&other, &path).sent().await;
        expect_error(res, 404, "batch_not_found").await;
    }
    let res = app.request_upload(&other, id).await;
    expect_error(res, 404, "batch_not_found").await;
    let res = app
        .delete(&other, &format!("/v1/batches/{id}"))
        .sent()
        .await;
    expect_error(res, 404, "batch_not_found").await;
    // Unknown ids look the same.
    let res = app
        .get(&owner, &format!("/v1/batches/{}", Uuid::new_v4()))
        .sent()
        .await;
    expect_error(res, 404, "batch_not_found").await;
    // And the owner's batch is untouched.
    assert_eq!(app.batch(&owner, id).await["state"], "open");
}

pub async fn uploads_after_close_are_409(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let batch_id = Uuid::parse_str(id).unwrap();
    let close = format!("/v1/batches/{id}/close");
    // An empty batch closed is complete at once, and its completion is handed to a worker.
    let res = app.post(&token, &close).sent().await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await["state"], "completed");
    let items = app.take_items(Lane::Effects, 1).await;
    assert_eq!(
        items,
        vec![WorkItem::FinalizeBatch {
            batch_id,
            redrive: false
        }]
    );
    // Closing again is idempotent (and re-hands the completion while its event is not done).
    let res = app.post(&token, &close).sent().await;
    assert_eq!(res.status(), 200);

    let res = app.upload(&token, id, &[("late.jpg", jpeg(20, 20))]).await;
    expect_error(res, 409, "batch_closed").await;
    let res = app.request_upload(&token, id).await;
    expect_error(res, 409, "batch_closed").await;
    assert_eq!(app.batch(&token, id).await["total"], 0);
}

pub async fn delete_removes_objects_and_state(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({"sizes": [32]})).await;
    let id = batch["id"].as_str().unwrap();
    let batch_id = Uuid::parse_str(id).unwrap();
    app.upload_ok(&token, id, 2).await;
    let jobs = app.take_jobs(2).await;
    app.finish(&jobs[0]).await;
    let rendition = keys::rendition_key(batch_id, jobs[0].photo_id, 32, jobs[0].options.format);
    assert!(app.ports.objects.head(&rendition).await.unwrap().is_some());

    let res = app
        .delete(&token, &format!("/v1/batches/{id}"))
        .sent()
        .await;
    assert_eq!(res.status(), 204);
    for job in &jobs {
        assert!(
            app.ports
                .objects
                .head(&job.original_key())
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(app.ports.objects.head(&rendition).await.unwrap().is_none());
    assert!(app.ports.state.get_batch(batch_id).await.unwrap().is_none());
    let res = app.get(&token, &format!("/v1/batches/{id}")).sent().await;
    expect_error(res, 404, "batch_not_found").await;
    // Its upload tickets stay valid until they lapse: the reconciler sweeps the prefix again
    // once they have (twice the presign TTL), not only when the batch would have expired.
    let indexed = app.ports.state.indexed_batches(0, 1000).await.unwrap();
    let entry = indexed.iter().find(|b| b.id == batch_id).expect("indexed");
    let tickets_lapse = chrono::Duration::seconds(2 * app.settings.api.presign_ttl_secs as i64);
    let until_sweep = entry.expires_at - chrono::Utc::now();
    assert!(
        until_sweep <= tickets_lapse && until_sweep > tickets_lapse - chrono::Duration::minutes(1),
        "swept in {until_sweep}, tickets lapse in {tickets_lapse}"
    );
}
