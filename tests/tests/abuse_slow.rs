//! Slow bodies cannot hold the upload slots (issue #24), tried as an attacker would: through
//! nginx on the local cluster, sessions trickle multipart bodies (a few bytes a second) into
//! every upload slot of the replica. While they hold them, an attacker's upload past its share
//! is refused 429 `too_many_uploads` and another session's upload 503 `server_busy`, which
//! shows the slots are really taken; within a few rate
//! windows every trickle is cut with 408 `body_too_slow` and the other session's upload,
//! retried after `Retry-After` as clients do, is accepted.
//!
//! Needs what `cluster.sh up` needs (nginx, Redis, RabbitMQ, Garage; TIRAGE_SKIP_BUILD=1 uses
//! the binaries already built) and fails naming the step. Environment:
//! TIRAGE_ABUSE_SLOW_PORT (nginx's port, default 18820; the processes use the ports after it).

// Test code: a failed step panics with its message, which is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tirage_e2e::api::Api;
use tirage_e2e::cluster::Cluster;
use tirage_e2e::photos;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The replica's slots and one session's share: two attacking sessions fill it.
const SLOTS: usize = 4;
const PER_SESSION: usize = 2;
/// The slowest body accepted: 1 KiB/s over windows of 3 s.
const MIN_BYTES_PER_SEC: u64 = 1024;
const WINDOW_SECS: u64 = 3;

fn cluster_up() -> Cluster {
    let port = std::env::var("TIRAGE_ABUSE_SLOW_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18820);
    let run_dir = std::env::temp_dir().join(format!("tirage-abuse-slow-{}", std::process::id()));
    Cluster::up(
        port,
        run_dir,
        &[
            // One replica: every trickle lands on the slots the bystander needs.
            ("TIRAGE_API_REPLICAS", "1".to_string()),
            ("TIRAGE_WORKERS", "1".to_string()),
            (
                "TIRAGE__REDIS__KEY_PREFIX",
                format!("tirage-abuse-slow:{}:", uuid::Uuid::new_v4().simple()),
            ),
            ("TIRAGE__API__MAX_CONCURRENT_UPLOADS", SLOTS.to_string()),
            ("TIRAGE__API__UPLOADS_PER_SESSION", PER_SESSION.to_string()),
            (
                "TIRAGE__API__UPLOAD_MIN_BYTES_PER_SEC",
                MIN_BYTES_PER_SEC.to_string(),
            ),
            (
                "TIRAGE__API__UPLOAD_RATE_WINDOW_SECS",
                WINDOW_SECS.to_string(),
            ),
            ("TIRAGE__API__BUSY_RETRY_AFTER_SECS", "1".to_string()),
        ],
    )
}

/// One multipart upload sent a few bytes at a time over a raw connection to nginx; returns
/// the status line and body nginx relayed, and how long the connection lasted.
async fn trickle(addr: String, token: String, batch: String) -> (String, Duration) {
    let started = Instant::now();
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/batches/{batch}/photos HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=TRICKLE\r\nContent-Length: 10000000\r\n\r\n\
         --TRICKLE\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.jpg\"\r\n\
         Content-Type: image/jpeg\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = conn.into_split();
    // 16 bytes a second, until the server answers or closes.
    let sender = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if write.write_all(&[0xAB; 16]).await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Duration::from_secs(WINDOW_SECS * 10);
    loop {
        match tokio::time::timeout(deadline, read.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                // Enough to judge: the status line and the error code.
                if String::from_utf8_lossy(&answer).contains("\"code\"") {
                    break;
                }
            }
            Err(_) => panic!("the trickle was neither answered nor closed within {deadline:?}"),
        }
    }
    sender.abort();
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trickled_bodies_are_cut_and_others_upload() {
    let cluster = cluster_up();
    let base = cluster.base();
    let addr = base.trim_start_matches("http://").to_string();
    let (name, photo) = photos::corpus(1).remove(0);

    // Attackers: SLOTS / PER_SESSION sessions, each trickling its share.
    let mut trickles = Vec::new();
    let mut attackers = Vec::new();
    for _ in 0..SLOTS / PER_SESSION {
        let attacker = Api::new(base.clone()).await;
        let batch = attacker.create_batch().await;
        for _ in 0..PER_SESSION {
            trickles.push(tokio::spawn(trickle(
                addr.clone(),
                attacker.token.clone(),
                batch.clone(),
            )));
        }
        attackers.push((attacker, batch));
    }
    let bystander = Api::new(base.clone()).await;
    let batch = bystander.create_batch().await;
    let send = || {
        let part = reqwest::multipart::Part::bytes(photo.clone())
            .file_name(name.clone())
            .mime_str("image/jpeg")
            .unwrap();
        bystander
            .http
            .post(format!("{base}/v1/batches/{batch}/photos"))
            .bearer_auth(&bystander.token)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
    };

    // The trickles hold every slot: the bystander is refused as long as they last.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // An attacker past its share is refused on its own account (429), whatever the replica
    // has left.
    let (attacker, attacked) = &attackers[0];
    let part = reqwest::multipart::Part::bytes(photo.clone())
        .file_name(name.clone())
        .mime_str("image/jpeg")
        .unwrap();
    let resp = attacker
        .http
        .post(format!("{base}/v1/batches/{attacked}/photos"))
        .bearer_auth(&attacker.token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let refused = resp.text().await.unwrap();
    assert!(refused.contains("too_many_uploads"), "{refused}");
    let mut accepted = 0;
    let busy_seen = Instant::now();
    let refused = loop {
        let resp = send().await.unwrap();
        match resp.status() {
            StatusCode::SERVICE_UNAVAILABLE => break resp.text().await.unwrap(),
            StatusCode::ACCEPTED => accepted += 1,
            other => panic!("bystander upload: {other} {}", resp.text().await.unwrap()),
        }
        assert!(
            busy_seen.elapsed() < Duration::from_secs(WINDOW_SECS),
            "the trickles never held the slots"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refused.contains("server_busy"), "{refused}");

    // Retried as clients do, it is accepted once the trickles are cut.
    let retrying = Instant::now();
    loop {
        let resp = send().await.unwrap();
        match resp.status() {
            StatusCode::ACCEPTED => {
                accepted += 1;
                break;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    retrying.elapsed() < Duration::from_secs(WINDOW_SECS * 3),
                    "still server_busy {:?} after the trickles began",
                    retrying.elapsed()
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => panic!("bystander upload: {other} {}", resp.text().await.unwrap()),
        }
    }
    for t in trickles {
        let (answer, lasted) = t.await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408") && answer.contains("body_too_slow"),
            "a trickle was not cut with 408 body_too_slow: {answer:?}"
        );
        assert!(
            lasted < Duration::from_secs(WINDOW_SECS * 3),
            "a trickle held its slot {lasted:?}"
        );
    }
    bystander.close(&batch).await;
    let done = bystander
        .wait_completed(&batch, Duration::from_secs(60))
        .await;
    assert_eq!(done["done"], accepted, "{done}");
}
