//! The event stream of a batch, followed through a whole upload: photos stored and queued,
//! finished by the stand-in worker, the batch closed and completed, renditions served.

use std::time::Duration;

use futures::StreamExt;
use reqwest::multipart::Form;
use serde_json::{Value, json};
use tirage_ports::RecordResult;
use uuid::Uuid;

use crate::common::client::jpeg_part;
use crate::common::{Backend, Sent, TestApp, expect_error, jpeg, json_of};

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

    let form = Form::new()
        .text("note", "ignored form field")
        .part("file", jpeg_part("one.jpg", jpeg(80, 60)))
        .part("file", jpeg_part("two.jpg", jpeg(60, 80)));
    let res = app
        .post(&token, &format!("/v1/batches/{id}/photos"))
        .header("X-Request-Id", "req-upload-1")
        .multipart(form)
        .sent()
        .await;
    assert_eq!(res.status(), 202);
    let body = json_of(res).await;
    let photos = body["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 2);
    assert_eq!(photos[0]["filename"], "one.jpg");
    assert_eq!(photos[1]["state"], "queued");

    // One confirmed, self-contained job per photo, carrying the request id.
    let jobs = app.take_jobs(2).await;
    for job in &jobs {
        assert_eq!(job.batch_id, batch_id);
        assert_eq!(job.request_id.as_deref(), Some("req-upload-1"));
        assert_eq!(job.options.sizes, vec![48, 16]);
        assert!(
            app.ports
                .objects
                .head(&job.original_key())
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(app.batch(&token, &id).await["total"], 2);

    // Watch while the "worker" finishes one photo, the batch is closed, then the other.
    let events = app
        .get(&token, &format!("/v1/batches/{id}/events"))
        .sent()
        .await;
    let reader = tokio::spawn(read_events(events));
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.finish(&jobs[0]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = app
        .post(&token, &format!("/v1/batches/{id}/close"))
        .sent()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await["state"], "processing");
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
    let list = app.photos(&token, &id).await;
    let photo = &list["photos"][0];
    assert_eq!(photo["state"], "done");
    assert_eq!(photo["width"], 80);
    let photo_id = photo["id"].as_str().unwrap();
    let url = photo["outputs"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("/v1/batches/{id}/photos/{photo_id}/48"));
    let res = app.get(&token, &url).sent().await;
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
        .get(&token, &format!("/v1/batches/{id}/photos/{photo_id}/720"))
        .sent()
        .await;
    expect_error(res, 404, "rendition_not_found").await;
    let res = app
        .get(
            &token,
            &format!("/v1/batches/{id}/photos/{}/48", Uuid::new_v4()),
        )
        .sent()
        .await;
    expect_error(res, 404, "photo_not_found").await;

    // A stream opened on a completed batch ends at once with `completed`.
    let events = read_events(
        app.get(&token, &format!("/v1/batches/{id}/events"))
            .sent()
            .await,
    )
    .await;
    assert_eq!(events.last().map(|(e, _)| e.as_str()), Some("completed"));
}
