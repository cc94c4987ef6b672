//! `tirage standalone` exports its traces over OTLP/HTTP when the standard `OTEL_*`
//! variables ask (issue #25), to a receiver that decodes the protocol's own messages
//! ([`tirage_testkit::otlp`]). Its API and worker share one process and the in-process queue,
//! which carries the trace context as RabbitMQ does: an upload sent with a client's
//! `traceparent` continues the client's trace through the request, the job's publication and
//! the job's run. A protocol that is not built in stops the process at start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tirage_testkit::otlp::{KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER, Receiver};

use common::{BIN, Standalone, fixtures};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_continues_the_clients_trace_through_the_job() {
    let receiver = Receiver::start().await;
    let endpoint = receiver.endpoint();
    let s = Standalone::start_with(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    );
    let c = reqwest::Client::new();
    let session = post_json(&c, s.url("/v1/sessions"), None).await;
    let token = session["token"].as_str().unwrap().to_owned();
    let batch = post_json(&c, s.url("/v1/batches"), Some(&token)).await;
    let batch = batch["id"].as_str().unwrap().to_owned();

    // The client's own span: the upload is its child.
    let (client_trace, client_span) = (
        uuid::Uuid::new_v4().simple().to_string(),
        "00f067aa0ba902b7".to_owned(),
    );
    let part =
        reqwest::multipart::Part::bytes(std::fs::read(fixtures().join("ladybird.jpg")).unwrap())
            .file_name("ladybird.jpg")
            .mime_str("image/jpeg")
            .unwrap();
    let uploaded = c
        .post(s.url(&format!("/v1/batches/{batch}/photos")))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{client_trace}-{client_span}-01"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 202);
    let uploaded: Value = uploaded.json().await.unwrap();
    let photo = uploaded["photos"][0]["id"].as_str().unwrap().to_owned();

    let chain = receiver
        .wait_for(Duration::from_secs(30), |spans| {
            let job = spans.iter().find(|s| {
                s.name == "process resize" && s.attribute("photo_id") == Some(photo.as_str())
            })?;
            let parent = |child: &tirage_testkit::otlp::Span| {
                spans
                    .iter()
                    .find(|s| s.span_id == child.parent_span_id && s.trace_id == child.trace_id)
                    .cloned()
            };
            let publish = parent(job)?;
            let request = parent(&publish)?;
            Some((job.clone(), publish, request))
        })
        .await;
    let (job, publish, request) = chain;
    for span in [&job, &publish, &request] {
        assert_eq!(span.service, "tirage-standalone", "{span:?}");
        assert_eq!(span.trace_id, client_trace, "the client's trace: {span:?}");
    }
    assert_eq!(
        (job.kind, publish.kind, request.kind),
        (KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER)
    );
    assert_eq!(publish.name, "publish resize");
    assert_eq!(
        request.parent_span_id, client_span,
        "the upload's span is a child of the client's: {request:?}"
    );
}

/// POSTs `{}` (with the session's token, if any) and returns the JSON answer.
async fn post_json(c: &reqwest::Client, url: String, token: Option<&str>) -> Value {
    let mut request = c.post(url).json(&json!({}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let res = request.send().await.unwrap();
    assert!(res.status().is_success(), "{res:?}");
    res.json().await.unwrap()
}

#[test]
fn a_protocol_not_built_in_stops_the_process_at_start() {
    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["standalone", "--port", "0", "--data"])
        .arg(data.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && stderr.contains("http/protobuf"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
