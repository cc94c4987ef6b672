//! Reading photos back: the paginated list and renditions served as redirects.

use serde_json::json;

use crate::common::{Backend, Sent, TestApp, expect_error, json_of};

pub async fn photos_are_paginated(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap();
    let path = format!("/v1/batches/{id}/photos");
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
        let res = app.get(&token, &path).query(&query).sent().await;
        assert_eq!(res.status(), 200);
        let page = json_of(res).await;
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
        let res = app.get(&token, &format!("{path}?{query}")).sent().await;
        expect_error(res, status, code).await;
    }
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
    let res = app.get(&token, &path).sent().await;
    expect_error(res, 404, "rendition_not_found").await;
    let jobs = app.take_jobs(1).await;
    app.finish(&jobs[0]).await;
    let res = app.get(&token, &path).sent().await;
    assert_eq!(res.status(), 307);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("http"), "{location}");
}
