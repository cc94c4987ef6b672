//! `tirage upload --zip FILE` against a real `tirage standalone`: the batch's archive is
//! saved whole (unzipped here with Python's `zipfile`, every entry measured), and a download
//! cut short by the connection is tried again rather than kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use common::{BIN, Standalone, assert_rendition, assert_success, dimensions, fixtures, listing};

const PHOTOS: [(&str, &str); 4] = [
    ("ladybird.jpg", "ladybird"),
    ("kleiber_tall.jpg", "kleiber_tall"),
    ("garden.webp", "garden"),
    ("wood.png", "wood"),
];

/// Extracts every entry to `<dir>/<name>` after checking every CRC; prints the names and
/// compression methods.
const UNZIP: &str = r#"
import json, os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None, "an entry failed its CRC check"
    for i in z.infolist():
        assert "/" not in i.filename and not i.filename.startswith(".")
        with open(os.path.join(sys.argv[2], i.filename), "wb") as f:
            f.write(z.read(i))
    print(json.dumps([[i.filename, i.compress_type] for i in z.infolist()]))
"#;

/// `tirage upload` with `args`, run in `dir`.
async fn upload_in(dir: &Path, args: Vec<String>) -> Output {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("upload")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run tirage upload")
    })
    .await
    .unwrap()
}

/// Unzips `zip` into `into`; every entry must be stored (method 0).
fn unzip(zip: &Path, into: &Path) -> Vec<String> {
    std::fs::create_dir_all(into).unwrap();
    let out = Command::new("python3")
        .args(["-c", UNZIP])
        .arg(zip)
        .arg(into)
        .output()
        .expect("python3 runs (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "zipfile refused {}: {}",
        zip.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<(String, u32)> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        entries.iter().all(|(_, method)| *method == 0),
        "{entries:?}"
    );
    entries.into_iter().map(|(name, _)| name).collect()
}

/// Every photo has one entry per size, of the right dimensions, and nothing else is there.
fn check_archive(zip: &Path, work: &Path, sizes: &[u32]) {
    let into = work.join("unzipped");
    let mut names = unzip(zip, &into);
    names.sort();
    let mut expected = Vec::new();
    for (file, stem) in PHOTOS {
        let original = dimensions(&fixtures().join(file));
        for size in sizes {
            let name = format!("{stem}_{size}.jpg");
            assert_rendition(original, *size, dimensions(&into.join(&name)), &name);
            expected.push(name);
        }
    }
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_alone_saves_every_rendition_in_one_archive() {
    let s = Standalone::start();
    let work = tempfile::tempdir().unwrap();
    let zip = work.path().join("archives").join("trip.zip");
    let output = upload_in(
        work.path(),
        vec![
            fixtures().display().to_string(),
            "--server".into(),
            s.base.clone(),
            "--zip".into(),
            zip.display().to_string(),
            "--sizes".into(),
            "480,240".into(),
        ],
    )
    .await;
    assert_success(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("4 photos, 8 renditions in {}", zip.display())),
        "{stdout}"
    );
    check_archive(&zip, work.path(), &[480, 240]);
    // No directory of loose files beside it, and no temp file left.
    assert!(!work.path().join("tirage-out").exists());
    assert_eq!(listing(&work.path().join("archives")), ["trip.zip"]);
}

/// A proxy that cuts the first archive download halfway (closing the connection, as the
/// API does when a rendition cannot be read mid-way) and forwards everything else.
struct CuttingProxy {
    upstream: std::sync::OnceLock<String>,
    http: reqwest::Client,
    archives: AtomicU32,
}

async fn forward(
    req: HttpRequest,
    body: web::Bytes,
    proxy: web::Data<CuttingProxy>,
) -> HttpResponse {
    let upstream = proxy.upstream.get().unwrap();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut out = proxy.http.request(method, format!("{upstream}{path}"));
    for (name, value) in req.headers() {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let res = match out.body(body.to_vec()).send().await {
        Ok(r) => r,
        Err(e) => return HttpResponse::BadGateway().body(e.to_string()),
    };
    let status = actix_web::http::StatusCode::from_u16(res.status().as_u16()).unwrap();
    let mut answer = HttpResponse::build(status);
    for (name, value) in res.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) {
            answer.append_header((name.as_str(), value.as_bytes()));
        }
    }
    if req.path().ends_with("/archive") && proxy.archives.fetch_add(1, Ordering::SeqCst) == 0 {
        let whole = res.bytes().await.unwrap();
        let half = whole.slice(..whole.len() / 2);
        let cut = futures::stream::iter([
            Ok(half),
            Err(std::io::Error::other("connection lost (test)")),
        ]);
        return answer.no_chunking(whole.len() as u64).streaming(cut);
    }
    match res.content_length() {
        Some(len) => answer.no_chunking(len).streaming(res.bytes_stream()),
        None => answer.streaming(res.bytes_stream()),
    }
}

fn start_proxy() -> (String, Arc<CuttingProxy>) {
    let proxy = Arc::new(CuttingProxy {
        upstream: std::sync::OnceLock::new(),
        http: reqwest::Client::new(),
        archives: AtomicU32::new(0),
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
async fn a_cut_archive_download_is_tried_again() {
    let (proxy_url, proxy) = start_proxy();
    let s = Standalone::start_with(&["--public-url", &proxy_url], &[]);
    proxy.upstream.set(s.base.clone()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let zip = work.path().join("all.zip");
    let out = work.path().join("out");
    // `--out` as well: loose files and the archive both.
    let output = upload_in(
        work.path(),
        vec![
            fixtures().display().to_string(),
            "--server".into(),
            proxy_url,
            "--zip".into(),
            zip.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--sizes".into(),
            "300".into(),
        ],
    )
    .await;
    assert_success(&output);
    assert_eq!(
        proxy.archives.load(Ordering::SeqCst),
        2,
        "cut once, then whole"
    );
    check_archive(&zip, work.path(), &[300]);
    assert_eq!(listing(&out).len(), PHOTOS.len());
    let left: Vec<String> = listing(work.path())
        .into_iter()
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}
