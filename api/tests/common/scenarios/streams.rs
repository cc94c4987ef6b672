//! Issue 12's bounds on what one client can hold: event streams per session, fed by the
//! replica's one progress subscription rather than by polling, and multipart uploads per
//! replica, refused with 503 and `Retry-After` past the bound.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

use crate::common::{Backend, Sent, TestApp, expect_error, jpeg, json_of};

/// Reads `res` until its text contains `needle`; the bound only keeps a broken stream from
/// hanging the suite.
async fn read_until(res: reqwest::Response, needle: &str) -> String {
    let mut text = String::new();
    let mut stream = res.bytes_stream();
    let read = async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains(needle) {
                return true;
            }
        }
        false
    };
    let found = tokio::time::timeout(Duration::from_secs(30), read).await;
    assert_eq!(found, Ok(true), "no {needle:?} in the stream");
    text
}

pub async fn progress_reaches_streams_without_polling(b: &impl Backend) {
    // A safety re-read once in ten minutes: whatever arrives sooner was announced.
    let app = TestApp::spawn_with(b, |s| s.api.events_poll_ms = 600_000).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({"sizes": [16]})).await;
    let id = batch["id"].as_str().unwrap().to_owned();
    app.upload_ok(&token, &id, 1).await;
    let jobs = app.take_jobs(1).await;
    let stream = app
        .get(&token, &format!("/v1/batches/{id}/events"))
        .sent()
        .await;
    assert_eq!(stream.status(), 200);
    let reader = tokio::spawn(read_until(stream, "event: completed"));
    let res = app
        .post(&token, &format!("/v1/batches/{id}/close"))
        .sent()
        .await;
    assert_eq!(res.status(), 200);
    app.finish(&jobs[0]).await;
    let text = reader.await.unwrap();
    assert!(text.contains("\"done\":1"), "{text}");
}

/// New sessions bring no new streams past the client address's share: the address's cap
/// holds across its sessions, and a stream that ends gives both slots back.
pub async fn event_streams_are_capped_per_address(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| {
        s.api.events_per_session = 2;
        s.api.events_per_address = 3;
    })
    .await;
    let mut held = Vec::new();
    let mut paths = Vec::new();
    for _ in 0..2 {
        let token = app.session().await;
        let batch = app.create_batch(&token, json!({})).await;
        let path = format!("/v1/batches/{}/events", batch["id"].as_str().unwrap());
        paths.push((token, path));
    }
    let [(first, first_path), (second, second_path)] = &paths[..] else {
        unreachable!()
    };
    for _ in 0..2 {
        let res = app.get(first, first_path).sent().await;
        assert_eq!(res.status(), 200);
        held.push(res);
    }
    let res = app.get(second, second_path).sent().await;
    assert_eq!(res.status(), 200, "the address's third");
    let res = app.get(second, second_path).sent().await;
    let body = expect_error(res, 429, "too_many_streams").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("address"), "{message}");
    // Streams that end give the session's and the address's slots back: closing the first
    // session's batch completes (and ends) both of its streams.
    let first_batch = first_path
        .trim_start_matches("/v1/batches/")
        .trim_end_matches("/events");
    let close = format!("/v1/batches/{first_batch}/close");
    assert_eq!(app.post(first, &close).sent().await.status(), 200);
    for res in held {
        read_until(res, "event: completed").await;
    }
    let mut reopened = false;
    for _ in 0..100 {
        if app.get(second, second_path).sent().await.status() == 200 {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened, "the address's slot came back");
}

pub async fn event_streams_are_capped_per_session(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| s.api.events_per_session = 2).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let path = format!("/v1/batches/{}/events", batch["id"].as_str().unwrap());
    let mut held = Vec::new();
    for _ in 0..2 {
        let res = app.get(&token, &path).sent().await;
        assert_eq!(res.status(), 200);
        held.push(res);
    }
    for _ in 0..5 {
        let res = app.get(&token, &path).sent().await;
        expect_error(res, 429, "too_many_streams").await;
    }
    // Another session has its own streams.
    let other = app.session().await;
    let other_batch = app.create_batch(&other, json!({})).await;
    let res = app
        .get(
            &other,
            &format!("/v1/batches/{}/events", other_batch["id"].as_str().unwrap()),
        )
        .sent()
        .await;
    assert_eq!(res.status(), 200);
    // A stream that ends gives its slot back: closing the batch completes (and ends) both.
    let res = app
        .post(
            &token,
            &format!("/v1/batches/{}/close", batch["id"].as_str().unwrap()),
        )
        .sent()
        .await;
    assert_eq!(res.status(), 200);
    for res in held {
        read_until(res, "event: completed").await;
    }
    let mut reopened = false;
    for _ in 0..100 {
        if app.get(&token, &path).sent().await.status() == 200 {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened, "ended streams kept their slots");
}

pub async fn uploads_past_the_replica_cap_are_503_with_retry_after(b: &impl Backend) {
    let app = TestApp::spawn_with(b, |s| {
        s.api.max_concurrent_uploads = 1;
        s.api.busy_retry_after_secs = 4;
    })
    .await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({})).await;
    let id = batch["id"].as_str().unwrap().to_owned();
    // An upload whose body stalls halfway holds the replica's one slot.
    let boundary = format!("b{}", Uuid::new_v4().simple());
    let photo = jpeg(64, 48);
    let (half, rest) = photo.split_at(photo.len() / 2);
    let head = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"slow.jpg\"\r\n\
         content-type: image/jpeg\r\n\r\n"
    );
    let first = Bytes::from([head.as_bytes(), half].concat());
    let last = Bytes::from([rest, format!("\r\n--{boundary}--\r\n").as_bytes()].concat());
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(
        futures::stream::once(async move {
            let _ = released.await;
            Ok(last)
        }),
    );
    let slow = app
        .post(&token, &format!("/v1/batches/{id}/photos"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let slow = tokio::spawn(slow);
    // Wait until the slow upload holds the slot. The probe is an upload into a closed batch:
    // it takes the free slot only for the instant of the batch check (then 409), so it does
    // not race the slow upload for it as a whole upload would (a slow upload refused would
    // sit draining its stalled body, and the test would wait for nothing).
    // Another session probes and is refused: the slow upload's own session holds its share
    // of the slots (all of this replica's one) and would be told so instead.
    let other = app.session().await;
    let closed = app.create_batch(&other, json!({})).await;
    let closed = closed["id"].as_str().unwrap().to_owned();
    let res = app
        .post(&other, &format!("/v1/batches/{closed}/close"))
        .sent()
        .await;
    assert_eq!(res.status(), 200);
    let others = app.create_batch(&other, json!({})).await;
    let others = others["id"].as_str().unwrap().to_owned();
    let mut held = false;
    // A loaded machine may take seconds to get the slow request's first bytes to the server.
    for _ in 0..600 {
        let res = app
            .upload(&other, &closed, &[("probe.jpg", jpeg(8, 8))])
            .await;
        if res.status() == 503 {
            held = true;
            break;
        }
        assert_eq!(res.status(), 409, "the probe meets the closed batch");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held, "the slow upload never held the slot");
    // Held: the next upload is refused at once, before anything of it is stored.
    let res = app
        .upload(&other, &others, &[("fast.jpg", jpeg(32, 24))])
        .await;
    let refused = (res.status() == 503).then_some(res);
    let refused = refused.expect("an upload beyond the cap was accepted");
    assert_eq!(refused.headers()["retry-after"], "4");
    expect_error(refused, 503, "server_busy").await;
    // The slow upload's session holds its whole share: its own next upload is told so.
    let res = app.upload(&token, &id, &[("mine.jpg", jpeg(32, 24))]).await;
    assert_eq!(res.headers()["retry-after"], "4");
    expect_error(res, 429, "too_many_uploads").await;
    // Other requests are not uploads: they are served as usual.
    assert_eq!(app.batch(&token, &id).await["state"], "open");
    release.send(()).unwrap();
    let res = slow.await.unwrap().unwrap();
    assert_eq!(res.status(), 202, "{:?}", res.text().await);
    // The slot is free again.
    let res = app
        .upload(&token, &id, &[("after.jpg", jpeg(32, 24))])
        .await;
    assert_eq!(res.status(), 202);
    let total = json_of(app.get(&token, &format!("/v1/batches/{id}")).sent().await).await;
    assert!(total["total"].as_u64().unwrap() >= 2);
}
