//! Reading photos back: the paginated list, renditions served like static files (ETag,
//! 304, byte ranges) or as redirects.

use serde_json::json;
use tirage_core::model::Rendition;

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

/// A session, a batch of 48-px renditions and its one photo, resized: (token, batch, photo).
async fn one_done_photo(app: &TestApp) -> (String, String, String) {
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({"sizes": [48]})).await;
    let id = batch["id"].as_str().unwrap().to_owned();
    let photo = app.upload_ok(&token, &id, 1).await.remove(0);
    let jobs = app.take_jobs(1).await;
    app.finish(&jobs[0]).await;
    (token, id, photo)
}

pub async fn renditions_are_served_like_static_files(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let (token, id, photo) = one_done_photo(&app).await;
    let id = id.as_str();
    let path = format!("/v1/batches/{id}/photos/{photo}/48");

    let res = app.get(&token, &path).sent().await;
    assert_eq!(res.status(), 200);
    let header = |res: &reqwest::Response, name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let etag = header(&res, "etag").expect("a rendition has an ETag");
    assert_eq!(header(&res, "accept-ranges").as_deref(), Some("bytes"));
    let cache = header(&res, "cache-control").unwrap();
    assert!(
        cache.starts_with("private, max-age=") && cache.ends_with(", immutable"),
        "{cache}"
    );
    let whole = res.bytes().await.unwrap();
    assert!(whole.len() > 20, "a JPEG rendition");
    // Strong, and the digest of exactly these bytes.
    assert_eq!(etag, format!("\"{}\"", Rendition::digest_of(&whole)));

    // Revalidation: current → 304 without a body; anything else → the image again.
    let res = app
        .get(&token, &path)
        .header("if-none-match", &etag)
        .sent()
        .await;
    assert_eq!(res.status(), 304);
    assert_eq!(header(&res, "etag").as_deref(), Some(etag.as_str()));
    assert!(res.bytes().await.unwrap().is_empty());
    let res = app
        .get(&token, &path)
        .header("if-none-match", "\"stale\"")
        .sent()
        .await;
    assert_eq!(res.status(), 200);

    // Byte ranges.
    let len = whole.len();
    for (range, want) in [
        ("bytes=0-9".to_owned(), 0..10),
        ("bytes=-5".to_owned(), len - 5..len),
        (format!("bytes=10-{}", len + 100), 10..len),
    ] {
        let res = app.get(&token, &path).header("range", &range).sent().await;
        assert_eq!(res.status(), 206, "{range}");
        assert_eq!(
            header(&res, "content-range"),
            Some(format!("bytes {}-{}/{len}", want.start, want.end - 1)),
            "{range}"
        );
        assert_eq!(
            &res.bytes().await.unwrap()[..],
            &whole[want.clone()],
            "{range}"
        );
    }
    let res = app
        .get(&token, &path)
        .header("range", format!("bytes={len}-"))
        .sent()
        .await;
    assert_eq!(
        header(&res, "content-range"),
        Some(format!("bytes */{len}"))
    );
    expect_error(res, 416, "range_not_satisfiable").await;
    // A range of another representation is not applied.
    let res = app
        .get(&token, &path)
        .header("range", "bytes=0-9")
        .header("if-range", "\"another\"")
        .sent()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap(), whole);
}

pub async fn signed_rendition_urls_need_no_session_and_are_public(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| {
        s.api.signed_rendition_urls = true;
        s.api.rendition_url_key = "a-test-key-of-32-characters-long".to_owned().into();
    })
    .await;
    let (token, id, _) = one_done_photo(&app).await;
    let res = app
        .get(&token, &format!("/v1/batches/{id}/photos"))
        .sent()
        .await;
    let list = json_of(res).await;
    let output = &list["photos"][0]["outputs"][0];
    let public = output["public_url"]
        .as_str()
        .expect("a signed URL per rendition");
    assert!(public.starts_with("/v1/renditions/"), "{public}");

    // The same bytes as the session's URL, without the session, for shared caches.
    let private = app
        .get(&token, output["url"].as_str().unwrap())
        .sent()
        .await;
    let private = private.bytes().await.unwrap();
    let res = app.fetch(public).await;
    assert_eq!(res.status(), 200);
    let cache = res.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(
        cache.starts_with("public, max-age=") && cache.ends_with(", immutable"),
        "{cache}"
    );
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(res.bytes().await.unwrap(), private);
    // A CDN revalidating gets 304.
    let res = app
        .anon(reqwest::Method::GET, public)
        .header("if-none-match", &etag)
        .sent()
        .await;
    assert_eq!(res.status(), 304);

    // A signature opens exactly its rendition: another size, a later expiry, a changed
    // signature are refused.
    let (path, query) = public.split_once('?').unwrap();
    let expires: i64 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("expires="))
        .unwrap()
        .parse()
        .unwrap();
    let signature = query.split_once("&signature=").unwrap().1;
    for forged in [
        format!("{}/360?{query}", path.rsplit_once('/').unwrap().0),
        format!("{path}?expires={}&signature={signature}", expires + 3600),
        format!(
            "{path}?expires={expires}&signature={}",
            signature.replace('a', "b").replace('0', "1")
        ),
    ] {
        expect_error(app.fetch(&forged).await, 403, "bad_signature").await;
    }
}

pub async fn rendition_urls_are_unsigned_unless_configured(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let (token, id, photo) = one_done_photo(&app).await;
    let id = id.as_str();
    let res = app
        .get(&token, &format!("/v1/batches/{id}/photos"))
        .sent()
        .await;
    let list = json_of(res).await;
    assert!(
        list["photos"][0]["outputs"][0].get("public_url").is_none(),
        "{list}"
    );
    let guess = format!("/v1/renditions/{id}/{photo}/48?expires=9999999999&signature=00");
    expect_error(app.fetch(&guess).await, 404, "not_found").await;
}
