//! Every endpoint and every error status of the v1 contract, written once for all backends.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tirage_api::Dependencies;
use tirage_shared::keys;
use tirage_shared::model::BatchState;
use tirage_shared::ports::{RecordResult, WorkItem};
use uuid::Uuid;

use super::{Backend, RefusingQueue, TestApp, expect_error, jpeg};

pub async fn operations_endpoints_answer(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    for name in [
        &app.deps.names.state,
        &app.deps.names.queue,
        &app.deps.names.objects,
    ] {
        assert_eq!(body["checks"][name.as_str()], "ok", "{body}");
    }

    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
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
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"tirage_api_http_requests_total{method="GET",route="/v1/batches/{batch_id}",status="200"} 1"#),
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
        .client
        .get(app.url("/nope"))
        .header("X-Request-Id", "from-nginx-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "from-nginx-42");
    expect_error(res, 404, "not_found").await;
    // A generated id when none (or a hostile one) comes in.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(Uuid::parse_str(&id).is_ok(), "{id}");
    // A batch id that is no UUID names nothing.
    let token = app.session().await;
    let res = app
        .get(&token, "/v1/batches/not-a-uuid")
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "not_found").await;
}

pub async fn sessions_issue_tokens_and_cookies(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let res = app
        .client
        .post(app.url("/v1/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    // 43 base64url characters = 256 bits.
    assert!(token.len() >= 22, "token too short: {token}");
    assert!(body["expires_at"].as_str().is_some());
    assert!(
        cookie.starts_with(&format!("tirage_session={token}")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");

    // The cookie alone authenticates.
    let res = app
        .client
        .post(app.url("/v1/batches"))
        .header("Cookie", format!("tirage_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // The store holds the digest, never the token.
    let session = app
        .deps
        .state
        .touch_session(token, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(session.is_none(), "the raw token must not be a session id");
}

pub async fn missing_or_unknown_credentials_are_401(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let res = app
        .client
        .post(app.url("/v1/batches"))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "missing_credentials").await;
    let res = app
        .post("made-up-token", "/v1/batches")
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "invalid_session").await;
    let res = app
        .client
        .get(app.url(&format!("/v1/batches/{}", Uuid::new_v4())))
        .header("Authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "invalid_session").await;
    let res = app
        .client
        .get(app.url(&format!("/v1/batches/{}", Uuid::new_v4())))
        .header("Cookie", "tirage_session=unknown")
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "invalid_session").await;
}

pub async fn sessions_expire_and_slide(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| s.sessions.ttl_secs = 2).await;
    let idle = app.session().await;
    let busy = app.session().await;
    let batch = app.create_batch(&busy, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    // Used every 0.7 s for 3.5 s: past the 2 s TTL, alive because it slides.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        app.batch(&busy, id).await;
    }
    let res = app.post(&idle, "/v1/batches").send().await.unwrap();
    expect_error(res, 401, "invalid_session").await;
}

pub async fn api_keys_guard_session_creation(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| {
        s.sessions.api_keys = vec!["key-one".to_owned().into(), "key-two".to_owned().into()];
    })
    .await;
    let res = app
        .client
        .post(app.url("/v1/sessions"))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "invalid_api_key").await;
    let res = app
        .client
        .post(app.url("/v1/sessions"))
        .header("X-Api-Key", "key-three")
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "invalid_api_key").await;
    let res = app
        .client
        .post(app.url("/v1/sessions"))
        .header("X-Api-Key", "key-two")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

pub async fn batch_options_are_validated(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| s.limits.max_json_bytes = 1024).await;
    let token = app.session().await;

    // Defaults for an empty body and for `{}`.
    let res = app.post(&token, "/v1/batches").send().await.unwrap();
    assert_eq!(res.status(), 201);
    let batch: Value = res.json().await.unwrap();
    assert_eq!(batch["sizes"], json!([1080, 720, 360]));
    assert_eq!(batch["format"], "jpeg");
    assert_eq!(batch["quality"], 85);
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
        (
            json!({"callback_url": "ftp://example.com/x"}),
            "invalid_callback_url",
        ),
        (json!({"callback_url": "not a url"}), "invalid_callback_url"),
        (json!({"sizes": "big"}), "invalid_body"),
        (json!({"colour": "red"}), "invalid_body"),
    ];
    for (body, code) in cases {
        let res = app
            .post(&token, "/v1/batches")
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(res, 422, code).await;
    }

    let res = app
        .post(&token, "/v1/batches")
        .header("Content-Type", "application/json")
        .body("{\"sizes\": [720,")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "malformed_json").await;
    let res = app
        .post(&token, "/v1/batches")
        .header("Content-Type", "text/plain")
        .body("sizes=720")
        .send()
        .await
        .unwrap();
    expect_error(res, 415, "unsupported_media_type").await;
    let res = app
        .post(&token, "/v1/batches")
        .json(&json!({"callback_url": format!("https://example.com/{}", "a".repeat(2000))}))
        .send()
        .await
        .unwrap();
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
        let res = app.get(&other, path).send().await.unwrap();
        expect_error(res, 404, "batch_not_found").await;
    }
    let res = app.upload(&other, id, &[("x.jpg", jpeg(32, 32))]).await;
    expect_error(res, 404, "batch_not_found").await;
    for path in [
        format!("/v1/batches/{id}/close"),
        format!("/v1/batches/{id}/photos/{photo}/complete"),
    ] {
        let res = app.post(&other, &path).send().await.unwrap();
        expect_error(res, 404, "batch_not_found").await;
    }
    let res = app
        .post(&other, &format!("/v1/batches/{id}/uploads"))
        .json(&json!({"files": [{"filename": "a.jpg", "size": 10, "content_type": "image/jpeg"}]}))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "batch_not_found").await;
    let res = app
        .client
        .delete(app.url(&format!("/v1/batches/{id}")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "batch_not_found").await;
    // Unknown ids look the same.
    let res = app
        .get(&owner, &format!("/v1/batches/{}", Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "batch_not_found").await;
    // And the owner's batch is untouched.
    assert_eq!(app.batch(&owner, id).await["state"], "open");
}

/// Reads an event stream to its end, returning `(event, data)` pairs.
async fn read_events(res: reqwest::Response) -> Vec<(String, Value)> {
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{:?}",
        res.headers()
    );
    let mut text = String::new();
    let mut stream = res.bytes_stream();
    let read = async {
        while let Some(chunk) = stream.next().await {
            text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("event stream did not end");
    text.split("\n\n")
        .filter_map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((event.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

pub async fn upload_queue_complete_and_stream_events(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({"sizes": [48, 16]})).await;
    let id = batch["id"].as_str().unwrap().to_owned();
    let batch_id = Uuid::parse_str(&id).unwrap();

    let form = reqwest::multipart::Form::new()
        .text("note", "ignored form field")
        .part(
            "file",
            reqwest::multipart::Part::bytes(jpeg(80, 60))
                .file_name("one.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(jpeg(60, 80))
                .file_name("two.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let res = app
        .post(&token, &format!("/v1/batches/{id}/photos"))
        .header("X-Request-Id", "req-upload-1")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    let photos = body["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 2);
    assert_eq!(photos[0]["filename"], "one.jpg");
    assert_eq!(photos[1]["state"], "queued");

    // One confirmed, self-contained job per photo, carrying the request id.
    let jobs = app.take_jobs(2).await;
    for job in &jobs {
        assert_eq!(job.batch_id, batch_id);
        assert_eq!(job.request_id.as_deref(), Some("req-upload-1"));
        assert_eq!(job.source_key, keys::original_key(batch_id, job.photo_id));
        assert_eq!(job.options.sizes, vec![48, 16]);
        assert!(
            app.deps
                .objects
                .head(&job.source_key)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(app.batch(&token, &id).await["total"], 2);

    // Watch while the "worker" finishes one photo, the batch is closed, then the other.
    let events = app
        .get(&token, &format!("/v1/batches/{id}/events"))
        .send()
        .await
        .unwrap();
    let reader = tokio::spawn(read_events(events));
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.finish(&jobs[0]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = app
        .post(&token, &format!("/v1/batches/{id}/close"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["state"], "processing");
    let res = app.finish(&jobs[1]).await;
    assert!(matches!(
        res,
        RecordResult::Recorded {
            completed_now: true,
            ..
        }
    ));

    let events = reader.await.unwrap();
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.last(), Some(&"completed"), "{names:?}");
    assert!(
        names.iter().filter(|n| **n == "progress").count() >= 2,
        "{names:?}"
    );
    let (_, last) = events.last().unwrap();
    assert_eq!(last["state"], "completed");
    assert_eq!(last["done"], 2);
    assert!(
        events
            .windows(2)
            .all(|w| w[0].1["done"].as_u64() <= w[1].1["done"].as_u64())
    );

    let batch = app.batch(&token, &id).await;
    assert_eq!(
        (
            batch["total"].as_u64(),
            batch["done"].as_u64(),
            batch["failed"].as_u64()
        ),
        (Some(2), Some(2), Some(0))
    );
    assert_eq!(batch["state"], "completed");

    // Photos and their renditions.
    let list: Value = app
        .get(&token, &format!("/v1/batches/{id}/photos"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let photo = &list["photos"][0];
    assert_eq!(photo["state"], "done");
    assert_eq!(photo["width"], 80);
    let url = photo["outputs"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(
        url,
        format!(
            "/v1/batches/{id}/photos/{}/48",
            photo["id"].as_str().unwrap()
        )
    );
    let res = app.get(&token, &url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    let bytes = res.bytes().await.unwrap();
    assert_eq!(
        bytes.len() as u64,
        photo["outputs"][0]["bytes"].as_u64().unwrap()
    );
    image::load_from_memory(&bytes).expect("a real image");
    // A size the batch does not have, and an unknown photo.
    let res = app
        .get(
            &token,
            &format!(
                "/v1/batches/{id}/photos/{}/720",
                photo["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "rendition_not_found").await;
    let res = app
        .get(
            &token,
            &format!("/v1/batches/{id}/photos/{}/48", Uuid::new_v4()),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "photo_not_found").await;

    // A stream opened on a completed batch ends at once with `completed`.
    let events = read_events(
        app.get(&token, &format!("/v1/batches/{id}/events"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(events.last().map(|(e, _)| e.as_str()), Some("completed"));
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
    let batch_id = Uuid::parse_str(id).unwrap();
    let leftover = app
        .deps
        .objects
        .delete_prefix(&keys::batch_prefix(batch_id))
        .await
        .unwrap();
    assert_eq!(leftover, 0, "no original may remain");
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
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(name)
                    .mime_str("image/jpeg")
                    .unwrap(),
            );
        }
        app.post(&token, &format!("/v1/batches/{id}/photos"))
            .header("Idempotency-Key", key)
            .multipart(form)
            .send()
    };
    let ids = super::photo_ids;
    let files = || vec![("a.jpg", jpeg(32, 24)), ("b.jpg", jpeg(24, 32))];

    let first = upload("upload-1", files()).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let retry = upload("upload-1", files()).await.unwrap();
    assert_eq!(retry.status(), 202);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(ids(&first), ids(&retry), "a retry names the same photos");
    assert_eq!(app.batch(&token, id).await["total"], 2, "counted once");

    // A retry never rewrites what its first attempt registered, whatever it sends.
    let sizes = |photos: Vec<String>| async {
        let mut sizes = Vec::new();
        for photo in photos {
            let key = keys::original_key(batch_id, Uuid::parse_str(&photo).unwrap());
            sizes.push(
                app.deps
                    .objects
                    .head(&key)
                    .await
                    .unwrap()
                    .expect("original")
                    .size,
            );
        }
        sizes
    };
    let before = sizes(ids(&first)).await;
    let res = upload(
        "upload-1",
        vec![("a.jpg", jpeg(32, 24)), ("b.jpg", Vec::new())],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(sizes(ids(&first)).await, before);
    assert_eq!(app.batch(&token, id).await["total"], 2);

    // Another key is another upload.
    let other = upload("upload-2", files()).await.unwrap();
    assert_eq!(other.status(), 202);
    let other: Value = other.json().await.unwrap();
    assert!(ids(&other).iter().all(|p| !ids(&first).contains(p)));
    assert_eq!(app.batch(&token, id).await["total"], 4);

    let res = upload("not a key!", files()).await.unwrap();
    expect_error(res, 422, "invalid_idempotency_key").await;
    assert_eq!(app.batch(&token, id).await["total"], 4);
}

pub async fn photo_limit_is_409_before_storing(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| s.limits.max_photos_per_batch = 2).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let batch_id = Uuid::parse_str(id).unwrap();
    let three: Vec<(&str, Vec<u8>)> = (0..3).map(|_| ("p.jpg", jpeg(20, 20))).collect();
    let res = app.upload(&token, id, &three).await;
    expect_error(res, 409, "too_many_photos").await;
    assert_eq!(app.batch(&token, id).await["total"], 0);
    assert_eq!(
        app.deps
            .objects
            .delete_prefix(&keys::batch_prefix(batch_id))
            .await
            .unwrap(),
        0
    );

    app.upload_ok(&token, id, 2).await;
    let res = app.upload(&token, id, &[("x.jpg", jpeg(20, 20))]).await;
    expect_error(res, 409, "too_many_photos").await;
    let res = app
        .post(&token, &format!("/v1/batches/{id}/uploads"))
        .json(&json!({"files": [{"filename": "a.jpg", "size": 10, "content_type": "image/jpeg"}]}))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "too_many_photos").await;
    assert_eq!(app.batch(&token, id).await["total"], 2);
}

pub async fn uploads_after_close_are_409(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let batch_id = Uuid::parse_str(id).unwrap();
    // An empty batch closed is complete at once, and its completion is handed to a worker.
    let res = app
        .post(&token, &format!("/v1/batches/{id}/close"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["state"], "completed");
    let items = app.take_items(1).await;
    assert_eq!(items, vec![WorkItem::FinalizeBatch { batch_id }]);
    // Closing again is idempotent (and re-hands the completion while its event is not done).
    let res = app
        .post(&token, &format!("/v1/batches/{id}/close"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let res = app.upload(&token, id, &[("late.jpg", jpeg(20, 20))]).await;
    expect_error(res, 409, "batch_closed").await;
    let res = app
        .post(&token, &format!("/v1/batches/{id}/uploads"))
        .json(&json!({"files": [{"filename": "a.jpg", "size": 10, "content_type": "image/jpeg"}]}))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "batch_closed").await;
    assert_eq!(app.batch(&token, id).await["total"], 0);
}

pub async fn non_multipart_is_415_and_empty_uploads_422(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let res = app
        .post(&token, &format!("/v1/batches/{id}/photos"))
        .header("Content-Type", "image/jpeg")
        .body(jpeg(20, 20))
        .send()
        .await
        .unwrap();
    expect_error(res, 415, "unsupported_media_type").await;

    let form = reqwest::multipart::Form::new().text("other", "x");
    let res = app
        .post(&token, &format!("/v1/batches/{id}/photos"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    expect_error(res, 422, "no_files").await;

    let res = app.upload(&token, id, &[("empty.jpg", Vec::new())]).await;
    expect_error(res, 422, "empty_file").await;

    let res = app
        .post(&token, &format!("/v1/batches/{id}/photos"))
        .header("Content-Type", "multipart/form-data; boundary=XYZ")
        .body(
            "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\nabc",
        )
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "malformed_multipart").await;
    assert_eq!(app.batch(&token, id).await["total"], 0);
}

pub async fn presigned_upload_then_complete(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| s.limits.max_file_bytes = 1_000_000).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let path = format!("/v1/batches/{id}/uploads");

    for (body, status, code) in [
        (json!({"files": []}), 422, "invalid_files"),
        (
            json!({"files": [{"filename": "a.jpg", "size": 10, "content_type": "text/html"}]}),
            422,
            "invalid_files",
        ),
        (
            json!({"files": [{"filename": "a.jpg", "size": 0, "content_type": "image/jpeg"}]}),
            422,
            "invalid_files",
        ),
        (
            json!({"files": [{"filename": "a.jpg", "content_type": "image/jpeg"}]}),
            422,
            "invalid_body",
        ),
        (
            json!({"files": [{"filename": "a.jpg", "size": 2_000_000, "content_type": "image/jpeg"}]}),
            413,
            "file_too_large",
        ),
    ] {
        let res = app.post(&token, &path).json(&body).send().await.unwrap();
        expect_error(res, status, code).await;
    }

    let photo = jpeg(40, 30);
    let res = app
        .post(&token, &path)
        .json(&json!({"files": [
            {"filename": "a.jpg", "size": photo.len(), "content_type": "image/jpeg"},
            {"filename": "b.jpg", "size": photo.len(), "content_type": "image/jpeg"}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let tickets = body["uploads"].as_array().unwrap().clone();
    assert_eq!(tickets.len(), 2);
    assert_eq!(tickets[0]["method"], "PUT");
    assert!(tickets[0]["url"].as_str().unwrap().starts_with("http"));
    assert!(tickets[0]["expires_at"].as_str().is_some());
    let first = tickets[0]["photo_id"].as_str().unwrap();
    let complete = format!("/v1/batches/{id}/photos/{first}/complete");

    // Nothing uploaded yet: 409, and the ticket stays usable.
    let res = app.post(&token, &complete).send().await.unwrap();
    expect_error(res, 409, "upload_missing").await;
    assert_eq!(app.batch(&token, id).await["total"], 0);

    b.upload_ticket(&app.deps, &tickets[0], photo.clone()).await;
    let res = app.post(&token, &complete).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["photos"][0]["id"], first);
    assert_eq!(body["photos"][0]["filename"], "a.jpg");
    let jobs = app.take_jobs(1).await;
    assert_eq!(jobs[0].photo_id.to_string(), first);
    assert_eq!(app.batch(&token, id).await["total"], 1);

    // Completing again (a retry) is harmless: counted once, and a photo still queued gets
    // its job again, in case the first attempt never published it.
    let res = app.post(&token, &complete).send().await.unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(app.batch(&token, id).await["total"], 1);
    let again = app.take_jobs(1).await;
    assert_eq!(again[0].photo_id.to_string(), first);
    // Once the photo is done, a late retry publishes nothing more.
    app.finish(&jobs[0]).await;
    let res = app.post(&token, &complete).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let res = app
        .post(
            &token,
            &format!("/v1/batches/{id}/photos/{}/complete", Uuid::new_v4()),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "upload_not_found").await;
    let b_ticket = &tickets[1];
    b.upload_ticket(&app.deps, b_ticket, photo.clone()).await;
    let second = b_ticket["photo_id"].as_str().unwrap();
    let res = app
        .post(
            &token,
            &format!("/v1/batches/{id}/photos/{second}/complete"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let next = app.take_jobs(1).await;
    assert_eq!(
        next[0].photo_id.to_string(),
        second,
        "no job was published for the done photo"
    );
}

pub async fn photos_are_paginated(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let mut uploaded = app.upload_ok(&token, id, 3).await;
    uploaded.extend(app.upload_ok(&token, id, 2).await);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", "2".to_owned())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let res = app
            .get(&token, &format!("/v1/batches/{id}/photos"))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        let photos = page["photos"].as_array().unwrap();
        assert!(photos.len() <= 2);
        seen.extend(photos.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, uploaded, "every photo once, in upload order");
    assert_eq!(pages, 3);

    for (query, status, code) in [
        ("limit=0", 422, "invalid_limit"),
        ("limit=100000", 422, "invalid_limit"),
        ("limit=abc", 400, "malformed_query"),
        ("cursor=not-a-cursor", 422, "invalid_cursor"),
    ] {
        let res = app
            .get(&token, &format!("/v1/batches/{id}/photos?{query}"))
            .send()
            .await
            .unwrap();
        expect_error(res, status, code).await;
    }
}

pub async fn rate_limit_answers_429_with_retry_after(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| {
        s.rate_limit.requests = 3;
        s.rate_limit.window_secs = 30;
    })
    .await;
    let token = app.session().await;
    let other = app.session().await;
    let batch = app.create_batch(&token, json!({})).await; // 1
    let id = batch["id"].as_str().unwrap();
    app.batch(&token, id).await; // 2
    app.batch(&token, id).await; // 3
    let res = app
        .get(&token, &format!("/v1/batches/{id}"))
        .send()
        .await
        .unwrap();
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    expect_error(res, 429, "rate_limited").await;
    // Per session: another session is not affected.
    let res = app.post(&other, "/v1/batches").send().await.unwrap();
    assert_eq!(res.status(), 201);
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
    assert!(app.deps.objects.head(&rendition).await.unwrap().is_some());

    let res = app
        .client
        .delete(app.url(&format!("/v1/batches/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for job in &jobs {
        assert!(
            app.deps
                .objects
                .head(&job.source_key)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(app.deps.objects.head(&rendition).await.unwrap().is_none());
    assert!(app.deps.state.get_batch(batch_id).await.unwrap().is_none());
    let res = app
        .get(&token, &format!("/v1/batches/{id}"))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "batch_not_found").await;
}

pub async fn renditions_can_redirect(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| {
        s.api.renditions = tirage_api::settings::RenditionDelivery::Redirect
    })
    .await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({"sizes": [24]})).await;
    let id = batch["id"].as_str().unwrap();
    let photo = app.upload_ok(&token, id, 1).await.remove(0);
    let path = format!("/v1/batches/{id}/photos/{photo}/24");
    // Not done yet.
    let res = app.get(&token, &path).send().await.unwrap();
    expect_error(res, 404, "rendition_not_found").await;
    let jobs = app.take_jobs(1).await;
    app.finish(&jobs[0]).await;
    let res = app.get(&token, &path).send().await.unwrap();
    assert_eq!(res.status(), 307);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("http"), "{location}");
}

pub async fn unconfirmed_jobs_are_recorded_failed_and_503(b: &impl Backend) {
    let test_deps = b.deps().await;
    let real_queue = test_deps.deps.queue.clone();
    let deps = Dependencies {
        queue: Arc::new(RefusingQueue(real_queue)),
        ..test_deps.deps
    };
    let app = TestApp::on(deps, test_deps.guard, |_| {});
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
    let list: Value = app
        .get(&token, &format!("/v1/batches/{id}/photos"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for p in list["photos"].as_array().unwrap() {
        assert_eq!(p["state"], "failed");
        assert_eq!(p["error"], "enqueue_failed");
    }
    // Closing completes the batch; handing the completion to the queue fails: 503, and the
    // batch stays completed so a retry can hand it over.
    let res = app
        .post(&token, &format!("/v1/batches/{id}/close"))
        .send()
        .await
        .unwrap();
    expect_error(res, 503, "job_queue_unavailable").await;
    assert_eq!(app.batch(&token, id).await["state"], "completed");
    let stored = app
        .deps
        .state
        .get_batch(Uuid::parse_str(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, BatchState::Completed);
    assert_eq!((stored.done, stored.failed, stored.total), (0, 2, 2));
}

pub async fn state_outage_is_503_and_readyz_names_it(b: &impl Backend) {
    let test_deps = b.deps().await;
    let dead = b.dead_state().await;
    let deps = Dependencies {
        state: dead,
        ..test_deps.deps
    };
    let name = deps.names.state.clone();
    let app = TestApp::on(deps, test_deps.guard, |_| {});
    let res = app
        .client
        .post(app.url("/v1/sessions"))
        .send()
        .await
        .unwrap();
    expect_error(res, 503, "state_store_unavailable").await;
    let res = app.post("some-token", "/v1/batches").send().await.unwrap();
    expect_error(res, 503, "state_store_unavailable").await;

    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "dependency_unavailable");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&name),
        "{body}"
    );
    assert_ne!(body["checks"][&name], "ok", "{body}");
    assert_eq!(body["checks"][&app.deps.names.queue], "ok", "{body}");
    assert_eq!(body["checks"][&app.deps.names.objects], "ok", "{body}");
    // Liveness does not depend on it.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

pub async fn object_store_outage_is_503_and_nothing_is_counted(b: &impl Backend) {
    let test_deps = b.deps().await;
    let deps = Dependencies {
        objects: super::dead_s3().await,
        names: tirage_api::DependencyNames {
            objects: "s3".into(),
            ..test_deps.deps.names.clone()
        },
        ..test_deps.deps
    };
    let app = TestApp::on(deps, test_deps.guard, |_| {});
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let res = app.upload(&token, id, &[("a.jpg", jpeg(20, 20))]).await;
    expect_error(res, 503, "object_store_unavailable").await;
    assert_eq!(app.batch(&token, id).await["total"], 0);

    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("s3"),
        "{body}"
    );
    assert_eq!(body["checks"][&app.deps.names.state], "ok", "{body}");
}
