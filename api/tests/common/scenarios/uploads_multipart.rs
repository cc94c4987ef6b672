//! Multipart uploads through the API: limits, all-or-none storing, idempotent retries and
//! malformed requests.

use reqwest::multipart::Form;
use serde_json::json;
use tirage_core::keys;
use uuid::Uuid;

use crate::common::{Backend, Sent, TestApp, expect_error, jpeg, json_of, photo_ids};

/// Originals left under a batch's prefix, removed as they are counted.
async fn leftover_originals(app: &TestApp, batch_id: &str) -> u64 {
    let prefix = keys::batch_prefix(Uuid::parse_str(batch_id).unwrap());
    app.ports.objects.delete_prefix(&prefix).await.unwrap()
}

pub async fn oversize_part_is_413_and_nothing_is_counted(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| s.limits.max_file_bytes = 4096).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let small = jpeg(16, 16);
    assert!(small.len() < 4096);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let res = app
        .upload(&token, id, &[("small.jpg", small), ("big.jpg", big)])
        .await;
    let body = expect_error(res, 413, "file_too_large").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("4096"));
    // All or none: the small part stored first was removed and nothing was counted.
    assert_eq!(app.batch(&token, id).await["total"], 0);
    assert_eq!(
        leftover_originals(&app, id).await,
        0,
        "no original may remain"
    );
    // The batch still works.
    app.upload_ok(&token, id, 1).await;
}

/// A multipart upload retried with its `Idempotency-Key` (its answer was lost) names the
/// same photos, counts them once and leaves their stored originals alone.
pub async fn idempotency_keys_make_upload_retries_safe(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let batch_id = Uuid::parse_str(id).unwrap();
    let upload = |key: &'static str, files: Vec<(&'static str, Vec<u8>)>| {
        app.upload_request(&token, id, &files)
            .header("Idempotency-Key", key)
            .sent()
    };
    let files = || vec![("a.jpg", jpeg(32, 24)), ("b.jpg", jpeg(24, 32))];

    let first = upload("upload-1", files()).await;
    assert_eq!(first.status(), 202);
    let first = photo_ids(&json_of(first).await);
    let retry = upload("upload-1", files()).await;
    assert_eq!(retry.status(), 202);
    let retry = photo_ids(&json_of(retry).await);
    assert_eq!(first, retry, "a retry names the same photos");
    assert_eq!(app.batch(&token, id).await["total"], 2, "counted once");

    // A retry never rewrites what its first attempt registered, whatever it sends.
    let sizes = |photos: Vec<String>| async {
        let mut sizes = Vec::new();
        for photo in photos {
            let key = keys::original_key(batch_id, Uuid::parse_str(&photo).unwrap());
            let meta = app.ports.objects.head(&key).await.unwrap();
            sizes.push(meta.expect("original").size);
        }
        sizes
    };
    let before = sizes(first.clone()).await;
    let res = upload(
        "upload-1",
        vec![("a.jpg", jpeg(32, 24)), ("b.jpg", Vec::new())],
    )
    .await;
    assert_eq!(res.status(), 202);
    assert_eq!(sizes(first.clone()).await, before);
    assert_eq!(app.batch(&token, id).await["total"], 2);

    // Another key is another upload.
    let other = upload("upload-2", files()).await;
    assert_eq!(other.status(), 202);
    let other = photo_ids(&json_of(other).await);
    assert!(other.iter().all(|p| !first.contains(p)));
    assert_eq!(app.batch(&token, id).await["total"], 4);

    let res = upload("not a key!", files()).await;
    expect_error(res, 422, "invalid_idempotency_key").await;
    assert_eq!(app.batch(&token, id).await["total"], 4);
}

pub async fn photo_limit_is_409_before_storing(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| s.limits.max_photos_per_batch = 2).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let three: Vec<(&str, Vec<u8>)> = (0..3).map(|_| ("p.jpg", jpeg(20, 20))).collect();
    let res = app.upload(&token, id, &three).await;
    expect_error(res, 409, "too_many_photos").await;
    assert_eq!(app.batch(&token, id).await["total"], 0);
    assert_eq!(leftover_originals(&app, id).await, 0);

    app.upload_ok(&token, id, 2).await;
    let res = app.upload(&token, id, &[("x.jpg", jpeg(20, 20))]).await;
    expect_error(res, 409, "too_many_photos").await;
    let res = app.request_upload(&token, id).await;
    expect_error(res, 409, "too_many_photos").await;
    assert_eq!(app.batch(&token, id).await["total"], 2);
}

pub async fn non_multipart_is_415_and_empty_uploads_422(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let path = format!("/v1/batches/{id}/photos");
    let res = app
        .post(&token, &path)
        .header("Content-Type", "image/jpeg")
        .body(jpeg(20, 20))
        .sent()
        .await;
    expect_error(res, 415, "unsupported_media_type").await;

    let form = Form::new().text("other", "x");
    let res = app.post(&token, &path).multipart(form).sent().await;
    expect_error(res, 422, "no_files").await;

    let res = app.upload(&token, id, &[("empty.jpg", Vec::new())]).await;
    expect_error(res, 422, "empty_file").await;

    let res = app
        .post(&token, &path)
        .header("Content-Type", "multipart/form-data; boundary=XYZ")
        .body(
            "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\nabc",
        )
        .sent()
        .await;
    expect_error(res, 400, "malformed_multipart").await;
    assert_eq!(app.batch(&token, id).await["total"], 0);
}
