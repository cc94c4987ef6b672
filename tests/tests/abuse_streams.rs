//! Black-box abuse of the cluster's streams, through nginx, as `deploy/local/cluster.sh`
//! runs it (two API replicas, two workers): an event-stream flood, replayed and forged
//! webhooks at a local receiver that verifies the documented signature scheme, callbacks
//! aimed at every reserved address range, odd ports and names resolving inside, and 64
//! parallel 8 MB uploads with 64 parallel large downloads while the API's peak RSS is
//! sampled. Each case also checks that another session keeps being served.
//!
//! One cluster for every case (starting one builds and launches seven processes); the cases
//! run in order in one test and each names itself when it fails. Needs what `cluster.sh up`
//! needs (nginx, Redis, RabbitMQ, Garage, cargo). Environment: TIRAGE_ABUSE_PORT (nginx's
//! port, default 18680; the replicas and workers use ports after it).

// Test code: a failed step panics with its message, which is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse_support;

use std::time::{Duration, Instant};

use abuse_support::{
    Api, Cluster, Receiver, SilentReceiver, api_pids, callbacks, cluster_up, noise_jpeg,
    upload_now, upload_retrying_busy, vm_hwm_kib,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The cluster's settings for these cases: small caps so that a flood reaches them, and a
/// receiver network the SSRF guard lets through (everything else stays refused).
const EVENTS_PER_SESSION: usize = 4;
/// Across the sessions of one client address (every session here comes through nginx from
/// 127.0.0.1).
const EVENTS_PER_ADDRESS: usize = 8;
const UPLOADS_PER_REPLICA: usize = 8;
const SECRET: &str = "abuse-suite-callback-key-4f1d9c0b7e2a";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abuse_of_streams_is_refused_and_others_are_served() {
    let receiver = Receiver::start("127.0.0.2", SECRET).await;
    let canary = Receiver::start("127.0.0.2", SECRET).await;
    let silent = SilentReceiver::start("127.0.0.2").await;
    let cluster = cluster_up(&[
        (
            "TIRAGE__API__EVENTS_PER_SESSION",
            EVENTS_PER_SESSION.to_string(),
        ),
        (
            "TIRAGE__API__EVENTS_PER_ADDRESS",
            EVENTS_PER_ADDRESS.to_string(),
        ),
        (
            "TIRAGE__API__MAX_CONCURRENT_UPLOADS",
            UPLOADS_PER_REPLICA.to_string(),
        ),
        ("TIRAGE__API__BUSY_RETRY_AFTER_SECS", "1".into()),
        ("TIRAGE__WORKER__CALLBACK_SECRET", SECRET.into()),
        (
            "TIRAGE__WORKER__CALLBACK_PORTS",
            format!("80,443,{},{}", receiver.port, silent.port),
        ),
        (
            "TIRAGE__WORKER__CALLBACK_ALLOW_NETWORKS",
            "127.0.0.2/32".into(),
        ),
        ("TIRAGE__WORKER__CALLBACK_RETRY_FOR_MS", "2000".into()),
    ]);
    let base = cluster.base();
    let bystander = Api::new(base.clone()).await;
    let bystander_batch = bystander.create_batch_with(json!({})).await;

    silent_callback_receivers_hold_no_resize_capacity(&cluster, &base, &silent).await;
    sse_flood_is_capped(&base, &bystander, &bystander_batch).await;
    webhooks_replayed_or_forged_are_refused(&base, &receiver, &bystander, &bystander_batch).await;
    ssrf_targets_are_refused(&cluster, &base, &canary, &receiver).await;
    parallel_uploads_and_downloads_keep_memory_bounded(
        &cluster,
        &base,
        &bystander,
        &bystander_batch,
    )
    .await;
}

/// One session closes 50 empty batches whose callback URL accepts connections and never
/// answers; another session's batch of 16 photos then finishes about as fast as before
/// them (with the callbacks inside the finalisation on the resize queue, 12 such batches
/// left 16 photos at 0 done after 120 s). Prints the ratio docs/RELIABILITY.md quotes.
async fn silent_callback_receivers_hold_no_resize_capacity(
    cluster: &Cluster,
    base: &str,
    silent: &SilentReceiver,
) {
    eprintln!("== case: 50 batches calling a receiver that never answers");
    let photos: Vec<Vec<u8>> = (0..16).map(|i| noise_jpeg(1280 + 8 * i, 960)).collect();
    let bystander = Api::new(base.to_string()).await;
    let batch_time = |api: &Api| {
        let (api, photos) = (api.clone(), photos.clone());
        async move {
            let started = Instant::now();
            let batch = api.create_batch().await;
            for (i, bytes) in photos.iter().enumerate() {
                upload_now(&api, &batch, &format!("p{i}.jpg"), bytes).await;
            }
            api.close(&batch).await;
            let done = api.wait_completed(&batch, Duration::from_secs(300)).await;
            assert_eq!(
                (done["done"].as_u64(), done["failed"].as_u64()),
                (Some(16), Some(0))
            );
            started.elapsed()
        }
    };
    let baseline = batch_time(&bystander).await;
    let attacker = Api::new(base.to_string()).await;
    let given_up_before = callbacks(cluster, "gave_up").await;
    for _ in 0..50 {
        let batch = attacker
            .create_batch_with(json!({ "callback_url": silent.url }))
            .await;
        attacker.close(&batch).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while silent.accepted() < 2 {
        assert!(
            Instant::now() < deadline,
            "no callback reached the silent receiver"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let loaded = batch_time(&bystander).await;
    let ratio = loaded.as_secs_f64() / baseline.as_secs_f64();
    eprintln!(
        "silent receivers: 16 photos in {baseline:?} alone, {loaded:?} beside 50 silent \
         callbacks: ratio {ratio:.2}; the receiver accepted {} connections",
        silent.accepted()
    );
    eprintln!(
        "silent receivers: {} callbacks given up so far",
        callbacks(cluster, "gave_up").await - given_up_before
    );
    // Noise allowance on a shared 2-core machine; a held resize lane takes minutes.
    assert!(
        loaded <= baseline.mul_f64(1.5) + Duration::from_secs(2),
        "the bystander's batch slowed from {baseline:?} to {loaded:?}"
    );
}

/// The bystander's batch answers 200: the service keeps serving other sessions.
async fn bystander_served(bystander: &Api, batch: &str, during: &str) {
    let resp = bystander.get(&format!("/v1/batches/{batch}")).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "bystander refused during {during}"
    );
}

async fn sse_flood_is_capped(base: &str, bystander: &Api, bystander_batch: &str) {
    eprintln!("== case: SSE flood capped per session");
    let flooder = Api::new(base.to_string()).await;
    let batch = flooder.create_batch_with(json!({})).await;
    let path = format!("/v1/batches/{batch}/events");
    let mut held = Vec::new();
    for i in 0..EVENTS_PER_SESSION {
        let mut resp = flooder.get(&path).await;
        assert_eq!(resp.status(), StatusCode::OK, "stream {i} within the cap");
        let first = resp.chunk().await.unwrap().expect("a first event");
        assert!(String::from_utf8_lossy(&first).contains("event: progress"));
        held.push(resp);
    }
    // The flood: every stream past the cap is refused, on whichever replica it lands.
    for i in 0..40 {
        let resp = flooder.get(&path).await;
        assert_eq!(
            resp.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "stream {i} past the cap"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    }
    // Another session streams and is served normally meanwhile.
    let mut other = bystander
        .get(&format!("/v1/batches/{bystander_batch}/events"))
        .await;
    assert_eq!(other.status(), StatusCode::OK, "bystander's stream");
    let first = other
        .chunk()
        .await
        .unwrap()
        .expect("bystander's first event");
    assert!(String::from_utf8_lossy(&first).contains("event: progress"));
    bystander_served(bystander, bystander_batch, "the SSE flood").await;
    // A second session of the address gets only what the address has left: the flooder's
    // streams and the bystander's one count against it too.
    let second = Api::new(base.to_string()).await;
    let second_batch = second.create_batch_with(json!({})).await;
    let second_path = format!("/v1/batches/{second_batch}/events");
    let mut second_held = Vec::new();
    for i in 0..EVENTS_PER_ADDRESS - EVENTS_PER_SESSION - 1 {
        let resp = second.get(&second_path).await;
        assert_eq!(resp.status(), StatusCode::OK, "second session's stream {i}");
        second_held.push(resp);
    }
    let resp = second.get(&second_path).await;
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "past the address's cap"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("address"), "{message}");
    // Its batch closed, its streams end and give the address's slots back.
    second
        .post_empty(&format!("/v1/batches/{second_batch}/close"))
        .await;
    for mut resp in second_held {
        let mut seen = String::new();
        while !seen.contains("event: completed") {
            match tokio::time::timeout(Duration::from_secs(20), resp.chunk()).await {
                Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                other => panic!("second session's stream ended early ({other:?}): {seen}"),
            }
        }
    }
    // Progress reaches a held stream through the replica's one subscription: closing the
    // batch changes its state, and the stream says so without the client polling.
    flooder
        .post_empty(&format!("/v1/batches/{batch}/close"))
        .await;
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("event: completed") {
        assert!(Instant::now() < deadline, "no completed event: {seen}");
        match tokio::time::timeout(Duration::from_secs(20), held[0].chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("stream ended before completed ({other:?}): {seen}"),
        }
    }
    // A stream that ends gives its slot back.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = flooder.get(&path).await;
        if resp.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slots never came back: {}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn webhooks_replayed_or_forged_are_refused(
    base: &str,
    receiver: &Receiver,
    bystander: &Api,
    bystander_batch: &str,
) {
    eprintln!("== case: replayed and forged webhooks refused by a verifying receiver");
    let api = Api::new(base.to_string()).await;
    let hook = format!("http://127.0.0.2:{}/hook", receiver.port);
    let batch = api.create_batch_with(json!({ "callback_url": hook })).await;
    // An empty batch completes when closed: its callback goes out at once.
    api.post_empty(&format!("/v1/batches/{batch}/close")).await;
    let genuine = receiver.wait_first_accepted(Duration::from_secs(60)).await;
    assert!(
        String::from_utf8_lossy(&genuine.body).contains(&batch),
        "the callback names the batch"
    );
    let header = genuine.signature.clone().expect("signed");
    let t: i64 = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .and_then(|t| t.parse().ok())
        .expect("t=<unix>,v1=<hex>");
    let now = abuse_support::unix_now();
    assert!(
        (now - t).abs() <= 300,
        "timestamp {t} is the sending time (now {now})"
    );

    // The exact request again: a replay, refused (the receiver remembers signatures within
    // its tolerance window, past it the timestamp is refused).
    assert_eq!(
        receiver.send(&genuine.body, Some(&header)).await,
        409,
        "replay"
    );
    assert_eq!(
        receiver.verify_at(&genuine.body, &header, t + 301),
        Err("outside tolerance"),
        "the same request 301 s later"
    );
    // A fresh timestamp on the old MAC, a changed body, another key, no header: forged.
    // (t + 1, not `now`: the callback may have been sent within this same second.)
    let v1 = header.split_once(",v1=").expect("v1").1;
    let moved = format!("t={},v1={v1}", t + 1);
    assert_eq!(
        receiver.send(&genuine.body, Some(&moved)).await,
        401,
        "moved timestamp"
    );
    let tampered = String::from_utf8_lossy(&genuine.body).replace("\"total\":0", "\"total\":9");
    assert_eq!(
        receiver.send(tampered.as_bytes(), Some(&header)).await,
        401,
        "changed body"
    );
    let other_key = abuse_support::sign("not-the-key", now, &genuine.body);
    assert_eq!(
        receiver.send(&genuine.body, Some(&other_key)).await,
        401,
        "another key"
    );
    assert_eq!(
        receiver.send(&genuine.body, None).await,
        401,
        "no signature"
    );
    let legacy = abuse_support::legacy_body_only(SECRET, &genuine.body);
    assert_eq!(
        receiver.send(&genuine.body, Some(&legacy)).await,
        401,
        "body-only scheme"
    );
    bystander_served(bystander, bystander_batch, "the webhook forgeries").await;
}

/// One callback target per reserved range of the IANA special-purpose registries, odd
/// ports, and names that resolve inside.
fn ssrf_targets(canary_port: u16) -> Vec<String> {
    let mut targets: Vec<String> = [
        "http://127.0.0.1/",
        "http://127.1.2.3:443/",
        "http://0.0.0.0/",
        "http://10.0.0.1/",
        "http://100.64.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://172.16.0.1/",
        "http://192.0.0.9/",
        "http://192.0.2.1/",
        "http://192.31.196.1/",
        "http://192.52.193.1/",
        "http://192.88.99.1/",
        "http://192.168.1.1/",
        "http://192.175.48.1/",
        "http://198.18.0.1/",
        "http://198.51.100.1/",
        "http://203.0.113.1/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://[::1]/",
        "http://[::]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::a00:1]/",
        "http://[64:ff9b::a00:1]/",
        "http://[64:ff9b:1::808:808]/",
        "http://[100::1]/",
        "http://[2001::1]/",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        "http://[2001:2::1]/",
        "http://[2001:db8::1]/",
        "http://[2002:7f00:1::1]/",
        "http://[2620:4f:8000::1]/",
        "http://[3fff::1]/",
        "http://[5f00::1]/",
        "http://[fc00::1]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://[fec0::1]/",
        "http://[ff02::1]/",
        // Odd ports, on public addresses: refused before any connection.
        "http://8.8.8.8:22/",
        "http://8.8.8.8:6379/",
        "https://1.1.1.1:8443/",
        // Names that resolve to loopback.
        "http://localhost/",
        "https://LOCALHOST:443/",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The receivers' own network is allowed, but not on a port outside the allowed list.
    targets.push(format!("http://127.0.0.2:{canary_port}/"));
    // This machine's name resolves to its own (private) address through /etc/hosts.
    if let Some(host) = abuse_support::private_hostname() {
        targets.push(format!("http://{host}/"));
    }
    targets
}

async fn ssrf_targets_are_refused(
    cluster: &Cluster,
    base: &str,
    canary: &Receiver,
    receiver: &Receiver,
) {
    eprintln!("== case: callbacks to reserved ranges, odd ports and inside names refused");
    let api = Api::new(base.to_string()).await;
    let bystander = Api::new(base.to_string()).await;
    let bystander_batch = bystander.create_batch_with(json!({})).await;
    let refused_before = callbacks(cluster, "refused").await;
    let delivered_before = callbacks(cluster, "delivered").await;
    let targets = ssrf_targets(canary.port);
    for target in &targets {
        let batch = api
            .create_batch_with(json!({ "callback_url": target }))
            .await;
        api.post_empty(&format!("/v1/batches/{batch}/close")).await;
    }
    let want = refused_before + targets.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let refused = callbacks(cluster, "refused").await;
        if refused >= want {
            assert_eq!(refused, want, "more refusals than targets");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {} callbacks refused",
            refused - refused_before,
            targets.len()
        );
        bystander_served(&bystander, &bystander_batch, "the SSRF attempts").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        callbacks(cluster, "delivered").await,
        delivered_before,
        "nothing delivered"
    );
    assert_eq!(canary.hits(), 0, "the canary on a refused port was reached");
    assert_eq!(receiver.worker_hits(), 1, "the receiver was reached again");
}

async fn parallel_uploads_and_downloads_keep_memory_bounded(
    cluster: &Cluster,
    base: &str,
    bystander: &Api,
    bystander_batch: &str,
) {
    eprintln!("== case: 64 parallel 8 MB uploads + 64 parallel large downloads");
    let api = Api::new(base.to_string()).await;
    // One large rendition: 3840x2160 noise as PNG is about 25 MB.
    let big = api
        .create_batch_with(json!({ "sizes": [2160], "format": "png" }))
        .await;
    let (photo, _) = upload_now(&api, &big, "noise.jpg", &noise_jpeg(3840, 2160)).await;
    api.post_empty(&format!("/v1/batches/{big}/close")).await;
    api.wait_completed(&big, Duration::from_secs(180)).await;
    let rendition = format!("/v1/batches/{big}/photos/{photo}/2160");
    let expected = api.get(&rendition).await.bytes().await.unwrap().len();
    assert!(
        expected > 8 * 1024 * 1024,
        "rendition of {expected} bytes is not large"
    );

    let uploads_batch = api.create_batch_with(json!({})).await;
    let payload: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let before: Vec<u64> = api_pids(cluster).into_iter().map(vm_hwm_kib).collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (api, batch, bytes) = (api.clone(), uploads_batch.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            upload_retrying_busy(&api, &batch, &format!("big-{i}.jpg"), &bytes).await
        }));
    }
    let mut downloads = Vec::new();
    for _ in 0..64 {
        let (api, path) = (api.clone(), rendition.clone());
        downloads.push(tokio::spawn(async move {
            let resp = api.get(&path).await;
            (
                resp.status(),
                resp.bytes().await.map(|b| b.len()).unwrap_or(0),
            )
        }));
    }
    let mut bystander_ok = 0;
    while tasks.iter().any(|t| !t.is_finished()) || downloads.iter().any(|t| !t.is_finished()) {
        bystander_served(bystander, bystander_batch, "the upload and download flood").await;
        bystander_ok += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut busy = 0;
    for t in tasks {
        busy += t.await.unwrap();
    }
    for d in downloads {
        let (status, len) = d.await.unwrap();
        assert_eq!((status, len), (StatusCode::OK, expected), "a download");
    }
    let elapsed = started.elapsed();
    let after: Vec<u64> = api_pids(cluster).into_iter().map(vm_hwm_kib).collect();
    eprintln!(
        "64 x 8 MB uploads + 64 x {expected} B downloads in {:.1} s; 503 server_busy or 429 too_many_uploads \
         answers: {busy}; bystander polls served: {bystander_ok}; API VmHWM before {before:?} \
         KiB, after {after:?} KiB",
        elapsed.as_secs_f64()
    );
    assert!(
        busy > 0,
        "64 parallel uploads never met the cap of {UPLOADS_PER_REPLICA} per replica"
    );
    // Held whole, 64 downloads alone would be 64 x the rendition (over 1.5 GB) and 64
    // uploads 64 x 8 MiB; streamed and bounded, each replica stays far below that.
    for (pid, kib) in api_pids(cluster).iter().zip(&after) {
        assert!(*kib < 400 * 1024, "API pid {pid} peaked at {kib} KiB");
    }
}
