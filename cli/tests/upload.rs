//! `tirage upload` against a real `tirage standalone`: a folder of real photos round-trips
//! with every rendition measured, bad files are reported, and transient server errors are
//! ridden out (a proxy in front answers 503/429 to the first request of every kind).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures::StreamExt;

use common::{
    Standalone, assert_rendition, assert_success, dimensions, fixtures, listing, text, upload,
};

const PHOTOS: [&str; 4] = [
    "ladybird.jpg",
    "kleiber_tall.jpg",
    "garden.webp",
    "wood.png",
];

fn stem(name: &str) -> &str {
    name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name)
}

/// Every photo has one file per size in `out`, of the right dimensions, and nothing else is
/// there (no temp file left behind).
fn check_renditions(out: &Path, photos: &[&str], sizes: &[u32], ext: &str) {
    let mut expected = Vec::new();
    for name in photos {
        let original = dimensions(&fixtures().join(name));
        for size in sizes {
            let file = format!("{}_{size}.{ext}", stem(name));
            let got = dimensions(&out.join(&file));
            assert_rendition(original, *size, got, &file);
            expected.push(file);
        }
    }
    expected.sort();
    assert_eq!(listing(out), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_photos_round_trips() {
    let s = Standalone::start();
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    for (i, name) in PHOTOS.iter().enumerate() {
        // One photo in a subdirectory: folders are walked.
        let dest = if i == 0 {
            input.join("nested").join(name)
        } else {
            input.join(name)
        };
        std::fs::copy(fixtures().join(name), dest).unwrap();
    }
    // Not an image by its signature: a folder walk leaves it out.
    std::fs::write(input.join("notes.txt"), "not a photo").unwrap();
    let out = work.path().join("out");
    let output = upload(vec![
        input.display().to_string(),
        "--server".into(),
        s.base.clone(),
        "--out".into(),
        out.display().to_string(),
        "--sizes".into(),
        "480,240".into(),
        "--format".into(),
        "webp".into(),
        "--concurrency".into(),
        "3".into(),
    ])
    .await;
    assert_success(&output);
    assert!(
        text(&output.stdout).contains("4 photos, 8 renditions"),
        "{}",
        text(&output.stdout)
    );
    check_renditions(&out, &PHOTOS, &[480, 240], "webp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_reported_with_their_codes() {
    let s = Standalone::start();
    let work = tempfile::tempdir().unwrap();
    let corrupt = work.path().join("broken.jpg");
    std::fs::write(&corrupt, b"\xFF\xD8\xFF\xE0garbage, not a JPEG stream").unwrap();
    let text_file = work.path().join("letter.jpg");
    std::fs::write(&text_file, "Dear Tirage, this is no photo.").unwrap();
    let out = work.path().join("out");
    // Multipart this time, so both upload paths are covered.
    let output = upload(vec![
        fixtures().join("ladybird.jpg").display().to_string(),
        corrupt.display().to_string(),
        text_file.display().to_string(),
        "--server".into(),
        s.base.clone(),
        "--out".into(),
        out.display().to_string(),
        "--sizes".into(),
        "300".into(),
        "--multipart".into(),
    ])
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("error: {}: corrupt_image:", corrupt.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "error: {}: unsupported_format:",
            text_file.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("ladybird"), "{stderr}");
    // The good photo still came back.
    check_renditions(&out, &["ladybird.jpg"], &[300], "jpg");
}

/// A JPEG cut short is rendered, and said: exit 0, its renditions written, one `warning:`
/// line with its code; the whole photo beside it, no line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_photo_is_rendered_with_a_warning() {
    let s = Standalone::start();
    let work = tempfile::tempdir().unwrap();
    let whole = std::fs::read(fixtures().join("ladybird.jpg")).unwrap();
    let cut = work.path().join("cut.jpg");
    std::fs::write(&cut, &whole[..whole.len() * 6 / 10]).unwrap();
    let out = work.path().join("out");
    let output = upload(vec![
        cut.display().to_string(),
        fixtures().join("ladybird.jpg").display().to_string(),
        "--server".into(),
        s.base.clone(),
        "--out".into(),
        out.display().to_string(),
        "--sizes".into(),
        "300".into(),
    ])
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("warning: {}: truncated: ", cut.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("ladybird"), "{stderr}");
    assert_eq!(listing(&out), ["cut_300.jpg", "ladybird_300.jpg"]);
    let original = dimensions(&fixtures().join("ladybird.jpg"));
    for file in ["cut_300.jpg", "ladybird_300.jpg"] {
        // The cut photo is rendered whole, its missing part grey.
        assert_rendition(original, 300, dimensions(&out.join(file)), file);
    }
}

/// A reverse proxy that answers the first request of every kind with 503 (429 with
/// `Retry-After` for batch creation) and forwards everything else to the upstream.
struct FlakyProxy {
    upstream: OnceLock<String>,
    http: reqwest::Client,
    /// Failures to inject per kind.
    failures: u32,
    /// Rendition downloads after this many send half their body, then hang.
    stall_renditions_after: Option<u32>,
    /// Answer event-stream requests 404, like a server without them.
    no_events: bool,
    seen: Mutex<HashMap<String, u32>>,
}

impl FlakyProxy {
    fn kind(req: &HttpRequest) -> String {
        let path = req.path();
        let last = path.rsplit('/').next().unwrap_or("");
        let what = if path.starts_with("/v1/objects/") {
            "object"
        } else if path.starts_with("/v1/batches/") && last.parse::<u32>().is_ok() {
            "rendition"
        } else if path == "/v1/sessions" || path == "/v1/batches" {
            path
        } else {
            last
        };
        format!("{} {what}", req.method())
    }
}

async fn forward(req: HttpRequest, body: web::Bytes, proxy: web::Data<FlakyProxy>) -> HttpResponse {
    let kind = FlakyProxy::kind(&req);
    let n = {
        let mut seen = proxy.seen.lock().unwrap();
        let n = seen.entry(kind.clone()).or_insert(0);
        *n += 1;
        *n
    };
    if proxy.no_events && kind == "GET events" {
        return HttpResponse::NotFound()
            .json(serde_json::json!({"error": {"code": "not_found", "message": "no such route"}}));
    }
    if n <= proxy.failures {
        return if kind == "POST /v1/batches" {
            HttpResponse::TooManyRequests()
                .insert_header(("retry-after", "1"))
                .json(
                    serde_json::json!({"error": {"code": "rate_limited", "message": "slow down"}}),
                )
        } else {
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({"error": {"code": "dependency_unavailable", "message": "injected"}}))
        };
    }
    let upstream = proxy.upstream.get().unwrap();
    let url = format!(
        "{upstream}{}",
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut out = proxy.http.request(method, url).body(body.to_vec());
    for (name, value) in req.headers() {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let res = match out.send().await {
        Ok(r) => r,
        Err(e) => return HttpResponse::BadGateway().body(e.to_string()),
    };
    let mut answer =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(res.status().as_u16()).unwrap());
    for (name, value) in res.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) {
            answer.append_header((name.as_str(), value.as_bytes()));
        }
    }
    if kind == "GET rendition" && proxy.stall_renditions_after.is_some_and(|k| n > k) {
        let body = res.bytes().await.unwrap_or_default();
        let half = body.slice(..body.len() / 2);
        let hang = futures::stream::once(async move { Ok::<_, std::io::Error>(half) })
            .chain(futures::stream::pending());
        return answer.streaming(hang);
    }
    // Streamed, so the event stream passes through as it happens.
    answer.streaming(res.bytes_stream())
}

/// Starts the proxy on a free port; the upstream is set once the standalone is up.
fn start_proxy(failures: u32) -> (String, Arc<FlakyProxy>) {
    start_proxy_with(failures, None, false)
}

fn start_proxy_with(
    failures: u32,
    stall: Option<u32>,
    no_events: bool,
) -> (String, Arc<FlakyProxy>) {
    let proxy = Arc::new(FlakyProxy {
        no_events,
        stall_renditions_after: stall,
        upstream: OnceLock::new(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        failures,
        seen: Mutex::new(HashMap::new()),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = web::Data::from(proxy.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(forward))
    })
    .workers(2)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_resumes_after_transient_server_errors() {
    let (proxy_url, proxy) = start_proxy(1);
    // Presigned URLs name the proxy too, so object uploads go through it.
    let s = Standalone::start_with(&["--public-url", &proxy_url], &[]);
    proxy.upstream.set(s.base.clone()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let output = upload(vec![
        fixtures().display().to_string(),
        "--server".into(),
        proxy_url.clone(),
        "--out".into(),
        out.display().to_string(),
        "--sizes".into(),
        "360".into(),
        "--concurrency".into(),
        "2".into(),
    ])
    .await;
    assert_success(&output);
    check_renditions(&out, &PHOTOS, &[360], "jpg");
    // Every step met a failure first and was retried.
    let seen = proxy.seen.lock().unwrap().clone();
    for kind in [
        "POST /v1/sessions",
        "POST /v1/batches",
        "POST uploads",
        "PUT object",
        "POST complete",
        "POST close",
        "GET events",
        "GET photos",
        "GET rendition",
    ] {
        let n = seen.get(kind).copied().unwrap_or(0);
        assert!(n >= 2, "{kind}: {n} requests ({seen:?})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded() {
    let (proxy_url, proxy) = start_proxy(5);
    let s = Standalone::start();
    proxy.upstream.set(s.base.clone()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let output = upload(vec![
        fixtures().join("wood.png").display().to_string(),
        "--server".into(),
        proxy_url,
        "--out".into(),
        work.path().join("out").display().to_string(),
        "--attempts".into(),
        "3".into(),
    ])
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("dependency_unavailable"), "{stderr}");
    assert_eq!(
        proxy.seen.lock().unwrap().get("POST /v1/sessions"),
        Some(&3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_leaves_nothing_half_written() {
    // Two renditions download whole; every later one stops half-way and hangs.
    let (proxy_url, proxy) = start_proxy_with(0, Some(2), false);
    let s = Standalone::start();
    proxy.upstream.set(s.base.clone()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let child = std::process::Command::new(common::BIN)
        .arg("upload")
        .arg(fixtures())
        .args([
            "--server",
            &proxy_url,
            "--sizes",
            "400,200",
            "--concurrency",
            "2",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while proxy
        .seen
        .lock()
        .unwrap()
        .get("GET rendition")
        .copied()
        .unwrap_or(0)
        < 4
    {
        assert!(
            std::time::Instant::now() < deadline,
            "downloads never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output.stderr));
    // Only whole renditions, under their final names; no temp file.
    let names = listing(&out);
    assert_eq!(names.len(), 2, "{names:?}");
    for name in names {
        assert!(!name.starts_with('.'), "{name} left behind");
        image::open(out.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_falls_back_to_polling_without_an_event_stream() {
    let (proxy_url, proxy) = start_proxy_with(0, None, true);
    let s = Standalone::start();
    proxy.upstream.set(s.base.clone()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let output = upload(vec![
        fixtures().join("kleiber_tall.jpg").display().to_string(),
        "--server".into(),
        proxy_url,
        "--out".into(),
        out.display().to_string(),
        "--sizes".into(),
        "256".into(),
    ])
    .await;
    assert_success(&output);
    check_renditions(&out, &["kleiber_tall.jpg"], &[256], "jpg");
    let seen = proxy.seen.lock().unwrap().clone();
    assert_eq!(seen.get("GET events"), Some(&1), "{seen:?}");
    // The batch was polled (GET /v1/batches/{id} ends in the id) until it completed.
    let polls: u32 = seen
        .iter()
        .filter(|(k, _)| k.starts_with("GET ") && uuid::Uuid::parse_str(&k[4..]).is_ok())
        .map(|(_, n)| *n)
        .sum();
    assert!(polls >= 1, "{seen:?}");
}
