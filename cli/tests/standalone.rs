//! `tirage standalone` serves the v1 contract on its embedded adapters, with its in-process
//! worker really resizing: the API issue's flows end to end against the binary, over HTTP.
//! (The API's own suite drives its dependencies in-process and plays the worker itself, so it
//! cannot target an external server; this suite covers each contract area instead.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Standalone, assert_rendition, fixtures};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn error_code(res: reqwest::Response) -> String {
    let body: Value = res.json().await.unwrap();
    body["error"]["code"].as_str().unwrap().to_owned()
}

async fn session(c: &reqwest::Client, s: &Standalone) -> String {
    let res = c.post(s.url("/v1/sessions")).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let cookie = res
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("tirage_session=") && cookie.contains("HttpOnly"));
    let body: Value = res.json().await.unwrap();
    assert!(body["expires_at"].is_string());
    body["token"].as_str().unwrap().to_owned()
}

/// Reads the batch's event stream until `completed`; returns the events' names.
async fn events_until_completed(
    c: &reqwest::Client,
    s: &Standalone,
    token: &str,
    batch: &str,
) -> Vec<String> {
    let res = c
        .get(s.url(&format!("/v1/batches/{batch}/events")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = res.bytes_stream();
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains("event: completed") && text.ends_with("\n\n") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the batch completed within 60 s");
    text.lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_serves_the_v1_contract() {
    let s = Standalone::start();
    let c = client();
    let jpeg = std::fs::read(fixtures().join("ladybird.jpg")).unwrap();
    let tall = std::fs::read(fixtures().join("kleiber_tall.jpg")).unwrap();

    // Health, readiness (naming the embedded dependencies), the OpenAPI document.
    assert_eq!(c.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    let ready = c.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let openapi: Value = c
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/v1/batches"].is_object());

    // Sessions and authentication.
    let res = c
        .post(s.url("/v1/batches"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(error_code(res).await, "missing_credentials");
    let res = c
        .post(s.url("/v1/batches"))
        .bearer_auth("forged")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let token = session(&c, &s).await;
    let other = session(&c, &s).await;

    // Batch validation.
    for (body, code) in [
        (json!({"sizes": []}), "invalid_sizes"),
        (json!({"sizes": [8193]}), "invalid_sizes"),
        (json!({"quality": 0}), "invalid_quality"),
        (json!({"format": "bmp"}), "invalid_format"),
    ] {
        let res = c
            .post(s.url("/v1/batches"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(error_code(res).await, code);
    }
    let res = c
        .post(s.url("/v1/batches"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(res).await, "malformed_json");

    let res = c
        .post(s.url("/v1/batches"))
        .bearer_auth(&token)
        .json(&json!({"sizes": [320, 160], "format": "jpeg", "quality": 80}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let batch: Value = res.json().await.unwrap();
    assert_eq!(batch["state"], "open");
    let id = batch["id"].as_str().unwrap().to_owned();
    // Another session sees nothing of it.
    let res = c
        .get(s.url(&format!("/v1/batches/{id}")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_code(res).await, "batch_not_found");

    // Multipart upload; not multipart is 415.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(jpeg.clone())
            .file_name("ladybird.jpg")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let res = c
        .post(s.url(&format!("/v1/batches/{id}/photos")))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["photos"][0]["state"], "queued");
    let res = c
        .post(s.url(&format!("/v1/batches/{id}/photos")))
        .bearer_auth(&token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);

    // Presigned upload: the URL points back at the service and is checked.
    let res = c
        .post(s.url(&format!("/v1/batches/{id}/uploads")))
        .bearer_auth(&token)
        .json(&json!({"files": [{"filename": "kleiber_tall.jpg", "size": tall.len(), "content_type": "image/jpeg"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let tickets: Value = res.json().await.unwrap();
    let ticket = &tickets["uploads"][0];
    let url = ticket["url"].as_str().unwrap().to_owned();
    let photo = ticket["photo_id"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&s.url("/v1/objects/")), "{url}");
    assert_eq!(ticket["method"], "PUT");
    let complete = s.url(&format!("/v1/batches/{id}/photos/{photo}/complete"));
    let res = c.post(&complete).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(error_code(res).await, "upload_missing");
    let forged = url.replace("signature=", "signature=00");
    let res = c.put(&forged).body(tall.clone()).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(error_code(res).await, "bad_signature");
    // A PUT signature is no GET signature.
    let res = c.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = c
        .put(&url)
        .header("content-type", "image/jpeg")
        .body(tall.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = c.post(&complete).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 202);

    // Close, then progress to completion over server-sent events; uploads now refused.
    let res = c
        .post(s.url(&format!("/v1/batches/{id}/close")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let events = events_until_completed(&c, &s, &token, &id).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("completed"),
        "{events:?}"
    );
    let batch: Value = c
        .get(s.url(&format!("/v1/batches/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            batch["state"].as_str(),
            batch["total"].as_u64(),
            batch["done"].as_u64(),
            batch["failed"].as_u64()
        ),
        (Some("completed"), Some(2), Some(2), Some(0))
    );
    let res = c
        .post(s.url(&format!("/v1/batches/{id}/uploads")))
        .bearer_auth(&token)
        .json(&json!({"files": [{"filename": "x.jpg", "size": 10, "content_type": "image/jpeg"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(error_code(res).await, "batch_closed");

    // Renditions: listed with their sizes, served with the measured dimensions.
    let list: Value = c
        .get(s.url(&format!("/v1/batches/{id}/photos")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let photos = list["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 2);
    for p in photos {
        assert_eq!(p["state"], "done", "{p}");
        let original = (
            p["width"].as_u64().unwrap() as u32,
            p["height"].as_u64().unwrap() as u32,
        );
        let outputs = p["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), 2);
        for o in outputs {
            let res = c
                .get(s.url(o["url"].as_str().unwrap()))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()[reqwest::header::CONTENT_TYPE], "image/jpeg");
            let bytes = res.bytes().await.unwrap();
            assert_eq!(bytes.len() as u64, o["bytes"].as_u64().unwrap());
            let img = image::load_from_memory(&bytes).unwrap();
            let got = (img.width(), img.height());
            assert_eq!(
                got,
                (
                    o["width"].as_u64().unwrap() as u32,
                    o["height"].as_u64().unwrap() as u32
                )
            );
            assert_rendition(
                original,
                o["size"].as_u64().unwrap() as u32,
                got,
                p["filename"].as_str().unwrap(),
            );
        }
    }
    let first = photos[0]["id"].as_str().unwrap();
    let res = c
        .get(s.url(&format!("/v1/batches/{id}/photos/{first}/999")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_code(res).await, "rendition_not_found");

    // Metrics count the bytes that came in, both ways.
    let metrics = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let uploaded: f64 = metrics
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("upload_bytes_total"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(uploaded as usize, jpeg.len() + tall.len());

    // Delete: gone for good, objects included.
    let res = c
        .delete(s.url(&format!("/v1/batches/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = c
        .get(s.url(&format!("/v1/batches/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let batch_dir = s.dir.path().join("data/objects/batches").join(&id);
    assert!(
        !batch_dir.exists(),
        "{} survived the delete",
        batch_dir.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_mode_points_at_presigned_urls_served_by_the_standalone() {
    let s = Standalone::start_with(&[], &[("TIRAGE__API__RENDITIONS", "redirect")]);
    let c = client();
    let token = session(&c, &s).await;
    let batch: Value = c
        .post(s.url("/v1/batches"))
        .bearer_auth(&token)
        .json(&json!({"sizes": [200]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = batch["id"].as_str().unwrap().to_owned();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(std::fs::read(fixtures().join("wood.png")).unwrap())
            .file_name("wood.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let res = c
        .post(s.url(&format!("/v1/batches/{id}/photos")))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    c.post(s.url(&format!("/v1/batches/{id}/close")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    events_until_completed(&c, &s, &token, &id).await;
    let list: Value = c
        .get(s.url(&format!("/v1/batches/{id}/photos")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = list["photos"][0]["outputs"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = c.get(s.url(&url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = res.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        location.starts_with(&s.url("/v1/objects/batches/")),
        "{location}"
    );
    let res = c.get(&location).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[reqwest::header::CONTENT_TYPE], "image/jpeg");
    let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_rendition((320, 240), 200, (img.width(), img.height()), "wood.png");
    // The same URL with its expiry moved is refused: the signature covers it.
    let tampered = location.replace("expires=", "expires=9");
    let res = c.get(&tampered).send().await.unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_standalone_cleanly() {
    let mut s = Standalone::start();
    // It answers on the port it printed (it was started with port 0).
    assert!(!s.base.ends_with(":0"), "{}", s.base);
    let res = client().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let exit = tokio::task::spawn_blocking(move || s.terminate(Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}
