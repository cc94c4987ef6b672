//! Sessions: tokens and cookies, what counts as credentials, sliding expiry, API keys, and
//! the per-session rate limit.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::common::{Backend, Sent, TestApp, expect_error, json_of};

pub async fn sessions_issue_tokens_and_cookies(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.anon(Method::POST, "/v1/sessions").sent().await;
    assert_eq!(res.status(), 201);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let body = json_of(res).await;
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
        .anon(Method::POST, "/v1/batches")
        .header("Cookie", format!("tirage_session={token}"))
        .sent()
        .await;
    assert_eq!(res.status(), 201);
    // The store holds the digest, never the token.
    let session = app
        .ports
        .state
        .touch_session(token, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(session.is_none(), "the raw token must not be a session id");
}

pub async fn missing_or_unknown_credentials_are_401(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.anon(Method::POST, "/v1/batches").sent().await;
    expect_error(res, 401, "missing_credentials").await;
    let res = app.post("made-up-token", "/v1/batches").sent().await;
    expect_error(res, 401, "invalid_session").await;
    let batch = format!("/v1/batches/{}", Uuid::new_v4());
    for (header, value) in [
        ("Authorization", "Basic Zm9vOmJhcg=="),
        ("Cookie", "tirage_session=unknown"),
    ] {
        let res = app
            .anon(Method::GET, &batch)
            .header(header, value)
            .sent()
            .await;
        expect_error(res, 401, "invalid_session").await;
    }
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
    let res = app.post(&idle, "/v1/batches").sent().await;
    expect_error(res, 401, "invalid_session").await;
}

pub async fn api_keys_guard_session_creation(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| {
        s.sessions.api_keys = vec!["key-one".to_owned().into(), "key-two".to_owned().into()];
    })
    .await;
    let create = || app.anon(Method::POST, "/v1/sessions");
    expect_error(create().sent().await, 401, "invalid_api_key").await;
    let res = create().header("X-Api-Key", "key-three").sent().await;
    expect_error(res, 401, "invalid_api_key").await;
    let res = create().header("X-Api-Key", "key-two").sent().await;
    assert_eq!(res.status(), 201);
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
    let res = app.get(&token, &format!("/v1/batches/{id}")).sent().await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    expect_error(res, 429, "rate_limited").await;
    // Per session: another session is not affected.
    let res = app.post(&other, "/v1/batches").sent().await;
    assert_eq!(res.status(), 201);
}
