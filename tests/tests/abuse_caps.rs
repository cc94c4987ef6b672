//! The caps one client may not pass, tried as an attacker would: through nginx on the local
//! cluster (`deploy/local/cluster.sh`), with forged forwarding headers. Each flood must be
//! refused with its documented code (docs/DEPLOY.md, "Client addresses and caps") while
//! another session, polling its batch throughout, keeps getting 200:
//! - a session flood, every request with a random `X-Forwarded-For`, `Forwarded` and
//!   `X-Real-IP`: 429 once the address's budget is spent (nginx replaces `X-Real-IP`);
//! - a flood of requests with made-up tokens: 429 instead of 401;
//! - a batch flood from one session: 409 `too_many_open_batches`;
//! - a pending-upload flood into one batch: 409 `too_many_photos` at the photo limit;
//! - a presigned PUT larger than announced, straight to S3 (Garage): refused, nothing
//!   stored, while the announced size goes through;
//! - one session creating and closing empty batches in a loop: 429 `batch_quota_exceeded`
//!   past its hourly quota, and a new session of the same address past the address's;
//! - sessions holding tickets and streamed parts: 409 `storage_quota_exceeded` past the bytes
//!   a session, then the address across its sessions, may keep.
//!
//! Needs what `cluster.sh up` needs (nginx, Redis, RabbitMQ, Garage, cargo for the release
//! binaries; TIRAGE_SKIP_BUILD=1 uses those already built) and fails naming the step.
//! Environment: TIRAGE_ABUSE_CAPS_PORT (nginx's port, default 18780; the processes use the
//! ports after it).

// Test code: a failed step panics with its message, which is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tirage_e2e::cluster::Cluster;
use tokio::task::JoinSet;

/// The caps this cluster runs with: small, so that a flood reaches them in seconds.
const SESSIONS_PER_WINDOW: usize = 20;
const UNKNOWN_TOKENS_PER_WINDOW: usize = 50;
const OPEN_BATCHES: usize = 10;
const PHOTOS_PER_BATCH: usize = 200;
/// Above the batch flood's 100 attempts (every attempt counts).
const BATCHES_PER_HOUR: usize = 110;
/// Across the address's sessions: above what the steps before the last one create (about
/// 216), below that plus one session's hourly quota.
const BATCHES_PER_ADDRESS: usize = 300;
/// Above what the pending-upload flood holds at once (30 requests of 50 kB each, charged
/// before the photo limit refuses them and gives them back).
const STORED_PER_SESSION: u64 = 2_000_000;
const STORED_PER_ADDRESS: u64 = 3_000_000;

/// The cluster with small caps, so that a flood reaches them in seconds, on its own keys.
fn cluster_up() -> Cluster {
    let port = std::env::var("TIRAGE_ABUSE_CAPS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18780);
    let run_dir = std::env::temp_dir().join(format!("tirage-abuse-caps-{}", std::process::id()));
    Cluster::up(
        port,
        run_dir,
        &[
            ("TIRAGE_WORKERS", "1".to_string()),
            // Its own keys: the counters this test fills must not limit any other run.
            (
                "TIRAGE__REDIS__KEY_PREFIX",
                format!("tirage-abuse-caps:{}:", uuid::Uuid::new_v4().simple()),
            ),
            (
                "TIRAGE__RATE_LIMIT__SESSION_CREATIONS",
                SESSIONS_PER_WINDOW.to_string(),
            ),
            (
                "TIRAGE__RATE_LIMIT__UNKNOWN_TOKEN_REQUESTS",
                UNKNOWN_TOKENS_PER_WINDOW.to_string(),
            ),
            ("TIRAGE__RATE_LIMIT__WINDOW_SECS", "600".to_string()),
            (
                "TIRAGE__LIMITS__MAX_OPEN_BATCHES_PER_SESSION",
                OPEN_BATCHES.to_string(),
            ),
            (
                "TIRAGE__LIMITS__MAX_PHOTOS_PER_BATCH",
                PHOTOS_PER_BATCH.to_string(),
            ),
            (
                "TIRAGE__LIMITS__BATCHES_PER_SESSION_PER_HOUR",
                BATCHES_PER_HOUR.to_string(),
            ),
            (
                "TIRAGE__LIMITS__BATCHES_PER_ADDRESS_PER_HOUR",
                BATCHES_PER_ADDRESS.to_string(),
            ),
            (
                "TIRAGE__LIMITS__STORED_BYTES_PER_SESSION",
                STORED_PER_SESSION.to_string(),
            ),
            (
                "TIRAGE__LIMITS__STORED_BYTES_PER_ADDRESS",
                STORED_PER_ADDRESS.to_string(),
            ),
        ],
    )
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn session(&self) -> String {
        let resp = self
            .http
            .post(self.url("/v1/sessions"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "POST /v1/sessions");
        let body: Value = resp.json().await.unwrap();
        body["token"].as_str().expect("token").to_owned()
    }

    async fn post(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn batch(&self, token: &str) -> String {
        let (status, body) = self.post(token, "/v1/batches", &json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "POST /v1/batches: {body}");
        body["id"].as_str().expect("batch id").to_owned()
    }
}

/// Another session polling its own batch while a flood runs; `finish` says how it fared.
struct Bystander {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<StatusCode>>,
}

impl Bystander {
    fn start(client: &Client, token: &str, batch: &str) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let (client, token, path) = (
            client.clone(),
            token.to_owned(),
            format!("/v1/batches/{batch}"),
        );
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let resp = client
                    .http
                    .get(client.url(&path))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                seen.push(resp.status());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        });
        Bystander { stop, task }
    }

    /// Every poll answered 200, and there were some.
    async fn finish(self, during: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let seen = self.task.await.unwrap();
        assert!(!seen.is_empty(), "{during}: the bystander made no request");
        let bad: Vec<_> = seen.iter().filter(|s| **s != StatusCode::OK).collect();
        assert!(
            bad.is_empty(),
            "{during}: the other session got {bad:?} in {} polls",
            seen.len()
        );
        eprintln!("{during}: bystander served {} polls, all 200", seen.len());
    }
}

/// Runs `n` requests made by `make`, at most 32 at once; their statuses in order.
async fn flood<F, Fut>(n: usize, make: F) -> Vec<StatusCode>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = StatusCode> + Send + 'static,
{
    let mut statuses = vec![StatusCode::OK; n];
    for start in (0..n).step_by(32) {
        let mut set = JoinSet::new();
        for i in start..(start + 32).min(n) {
            let fut = make(i);
            set.spawn(async move { (i, fut.await) });
        }
        while let Some(done) = set.join_next().await {
            let (i, status) = done.unwrap();
            statuses[i] = status;
        }
    }
    statuses
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floods_are_refused_while_other_sessions_are_served() {
    let cluster = cluster_up();
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        base: cluster.base(),
    };
    // Every session this test needs, before the session flood spends the address's budget.
    let bystander = client.session().await;
    let bystander_batch = client.batch(&bystander).await;
    let batcher = client.session().await;
    let uploader = client.session().await;
    let churner = client.session().await;
    let hoarders = [client.session().await, client.session().await];
    let latecomer = client.session().await;
    let made_before = 7;

    // 1. Sessions with forged forwarding headers: nginx replaces X-Real-IP, the API reads
    //    nothing else, so all of them count against 127.0.0.1.
    let watch = Bystander::start(&client, &bystander, &bystander_batch);
    let statuses = flood(600, |i| {
        let (http, url) = (client.http.clone(), client.url("/v1/sessions"));
        async move {
            let forged = format!(
                "{}.{}.{}.{}",
                11 + i % 200,
                i % 251,
                (i * 7) % 253,
                1 + i % 250
            );
            http.post(url)
                .header("X-Forwarded-For", &forged)
                .header("Forwarded", format!("for={forged}"))
                .header("X-Real-IP", &forged)
                .send()
                .await
                .unwrap()
                .status()
        }
    })
    .await;
    watch.finish("session flood").await;
    let created = count(&statuses, StatusCode::CREATED);
    assert_eq!(
        created,
        SESSIONS_PER_WINDOW - made_before,
        "sessions created despite forged headers"
    );
    assert_eq!(
        count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        600 - created,
        "every other attempt is 429: {statuses:?}"
    );

    // 2. Made-up tokens: counted per address, 429 past the budget.
    let watch = Bystander::start(&client, &bystander, &bystander_batch);
    let statuses = flood(300, |i| {
        let (http, url) = (client.http.clone(), client.url("/v1/batches"));
        async move {
            http.post(url)
                .bearer_auth(format!("guessed-token-{i}-{}", uuid::Uuid::new_v4()))
                .header("X-Forwarded-For", format!("10.0.{}.{}", i % 200, i % 250))
                .send()
                .await
                .unwrap()
                .status()
        }
    })
    .await;
    watch.finish("unknown-token flood").await;
    assert_eq!(
        count(&statuses, StatusCode::UNAUTHORIZED),
        UNKNOWN_TOKENS_PER_WINDOW
    );
    assert_eq!(
        count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        300 - UNKNOWN_TOKENS_PER_WINDOW
    );

    // 3. One session opening batches.
    let watch = Bystander::start(&client, &bystander, &bystander_batch);
    let statuses = flood(100, |_| {
        let (client, token) = (client.clone(), batcher.clone());
        async move { client.post(&token, "/v1/batches", &json!({})).await.0 }
    })
    .await;
    watch.finish("batch flood").await;
    assert_eq!(count(&statuses, StatusCode::CREATED), OPEN_BATCHES);
    assert_eq!(
        count(&statuses, StatusCode::CONFLICT),
        100 - OPEN_BATCHES,
        "{statuses:?}"
    );
    let (status, body) = client.post(&batcher, "/v1/batches", &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "too_many_open_batches");

    // 4. Pending presigned uploads into one batch: 30 requests of 50 tickets each.
    let target = client.batch(&uploader).await;
    let watch = Bystander::start(&client, &bystander, &bystander_batch);
    let files: Vec<Value> = (0..50)
        .map(|i| json!({"filename": format!("f{i}.jpg"), "size": 1000, "content_type": "image/jpeg"}))
        .collect();
    let request = json!({ "files": files });
    let statuses = flood(30, |_| {
        let (client, token, body) = (client.clone(), uploader.clone(), request.clone());
        let path = format!("/v1/batches/{target}/uploads");
        async move { client.post(&token, &path, &body).await.0 }
    })
    .await;
    watch.finish("pending-upload flood").await;
    assert_eq!(
        count(&statuses, StatusCode::CREATED),
        PHOTOS_PER_BATCH / 50,
        "{statuses:?}"
    );
    assert_eq!(
        count(&statuses, StatusCode::CONFLICT),
        30 - PHOTOS_PER_BATCH / 50
    );
    let one = json!({"files": [{"filename": "x.jpg", "size": 10, "content_type": "image/jpeg"}]});
    let (status, body) = client
        .post(&uploader, &format!("/v1/batches/{target}/uploads"), &one)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "too_many_photos");

    // 5. A presigned PUT larger than announced, straight to the object store.
    let small = client.batch(&uploader).await;
    let (status, body) = client
        .post(
            &uploader,
            &format!("/v1/batches/{small}/uploads"),
            &json!({"files": [
                {"filename": "a.jpg", "size": 1000, "content_type": "image/jpeg"}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ticket = body["uploads"][0].clone();
    let photo = ticket["photo_id"].as_str().unwrap().to_owned();
    let put = |len: usize| {
        let mut req = client.http.put(ticket["url"].as_str().unwrap());
        for (name, value) in ticket["headers"].as_object().unwrap() {
            // The attacker states the length it really sends.
            if !name.eq_ignore_ascii_case("content-length") {
                req = req.header(name.as_str(), value.as_str().unwrap());
            }
        }
        req.body(vec![0xA5u8; len]).send()
    };
    let watch = Bystander::start(&client, &bystander, &bystander_batch);
    match put(256 * 1024).await {
        Ok(resp) => assert!(
            resp.status().is_client_error(),
            "a 256 KiB PUT to a 1000-byte ticket answered {}",
            resp.status()
        ),
        // The store may answer and close before taking the whole body.
        Err(e) => eprintln!("oversize PUT cut off by the store: {e}"),
    }
    watch.finish("oversize presigned PUT").await;
    let complete = format!("/v1/batches/{small}/photos/{photo}/complete");
    let (status, body) = client.post(&uploader, &complete, &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"]["code"], "upload_missing",
        "nothing was stored"
    );
    // The announced size goes through the same URL.
    let exact = put(1000).await.unwrap();
    assert!(exact.status().is_success(), "{}", exact.status());
    let (status, body) = client.post(&uploader, &complete, &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // 6. One session creating and closing empty batches in a loop: bounded by the hour.
    let watch = Bystander::start(&client, &bystander, &bystander_batch);
    for i in 0..BATCHES_PER_HOUR {
        let id = client.batch(&churner).await;
        let (status, body) = client
            .post(&churner, &format!("/v1/batches/{id}/close"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "close {i}: {body}");
    }
    let (status, body) = client.post(&churner, "/v1/batches", &json!({})).await;
    watch.finish("batch churn").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "batch_quota_exceeded");

    // 7. Bytes kept: tickets by their announced sizes, per session, then per address (the
    //    uploader above holds 201,000 of the address's bytes already).
    let watch = Bystander::start(&client, &bystander, &bystander_batch);
    let [first, second] = &hoarders;
    let hoard = client.batch(first).await;
    let tickets = |n: usize, size: u64| {
        let files: Vec<Value> = (0..n)
            .map(|i| json!({"filename": format!("h{i}.jpg"), "size": size, "content_type": "image/jpeg"}))
            .collect();
        json!({ "files": files })
    };
    let path = format!("/v1/batches/{hoard}/uploads");
    let (status, body) = client.post(first, &path, &tickets(2, 800_000)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = client.post(first, &path, &tickets(1, 500_000)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "storage_quota_exceeded");
    // A streamed part is charged once stored: past the quota it is refused and removed.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![0xA5u8; 500_000])
            .file_name("big.jpg")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let resp = client
        .http
        .post(client.url(&format!("/v1/batches/{hoard}/photos")))
        .bearer_auth(first)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "storage_quota_exceeded");
    // Another session of the same address: its own session count, the address's shared.
    let other = client.batch(second).await;
    let path = format!("/v1/batches/{other}/uploads");
    let (status, body) = client.post(second, &path, &tickets(1, 800_000)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = client.post(second, &path, &tickets(1, 800_000)).await;
    watch.finish("stored bytes").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "storage_quota_exceeded");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("address"), "{message}");

    // 8. A new session of the same address brings no new batches past the address's
    //    hourly quota: refused before its own quota.
    let watch = Bystander::start(&client, &bystander, &bystander_batch);
    let mut created = 0;
    let refused = loop {
        let (status, body) = client.post(&latecomer, "/v1/batches", &json!({})).await;
        if status != StatusCode::CREATED {
            break (status, body);
        }
        created += 1;
        let id = body["id"].as_str().expect("batch id").to_owned();
        let close = format!("/v1/batches/{id}/close");
        assert_eq!(
            client.post(&latecomer, &close, &json!({})).await.0,
            StatusCode::OK
        );
        assert!(
            created < BATCHES_PER_HOUR,
            "the address's quota never refused"
        );
    };
    watch.finish("batch churn from a new session").await;
    let (status, body) = refused;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "batch_quota_exceeded");
    assert!(created > 0, "the address had room left for the new session");
}
