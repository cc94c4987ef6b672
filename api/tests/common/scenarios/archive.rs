//! `GET /v1/batches/{id}/archive`: the ZIP of a batch's renditions, unzipped for real
//! (Python's `zipfile`) and checked entry by entry; sizes narrowed and refused; another
//! session's batch; a rendition that vanishes once the download has started.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tirage_core::codes::FailureCode;
use tirage_core::model::PhotoOutcome;
use tirage_ports::{ObjectStore, ObjectStoreError};
use tirage_testkit::intercepted::{Intercepted, ObjectHooks};
use uuid::Uuid;

use crate::common::{Backend, Sent, TestApp, TestDeps, expect_error, jpeg, json_of, photo_ids};

/// Extracts every entry to `<dir>/<index>` after checking every CRC; prints the entries.
const UNZIP: &str = r#"
import json, os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None, "an entry failed its CRC check"
    out = []
    for n, i in enumerate(z.infolist()):
        with open(os.path.join(sys.argv[2], str(n)), "wb") as f:
            f.write(z.read(i))
        out.append({"name": i.filename, "size": i.file_size, "method": i.compress_type,
                    "flags": i.flag_bits})
    print(json.dumps(out))
"#;

/// An unzipped entry: its name, its bytes, and how it was stored.
struct Entry {
    name: String,
    data: Vec<u8>,
    method: u64,
}

/// Unzips `zip` with Python's `zipfile`, failing the test when it is not a valid archive.
fn unzip(zip: &[u8]) -> Vec<Entry> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive.zip");
    std::fs::write(&path, zip).unwrap();
    let out = Command::new("python3")
        .args(["-c", UNZIP])
        .arg(&path)
        .arg(dir.path())
        .output()
        .expect("python3 runs (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "zipfile refused the archive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    listed
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let data = std::fs::read(dir.path().join(n.to_string())).unwrap();
            assert_eq!(e["size"].as_u64(), Some(data.len() as u64), "{e}");
            Entry {
                name: e["name"].as_str().unwrap().to_owned(),
                data,
                method: e["method"].as_u64().unwrap(),
            }
        })
        .collect()
}

/// The archive at `path`: status 200, its headers checked, its body exactly as long as
/// `Content-Length` said.
async fn download(app: &TestApp, token: &str, path: &str) -> Vec<u8> {
    let res = app.get(token, path).sent().await;
    assert_eq!(res.status(), 200, "{path}");
    let headers = res.headers().clone();
    assert_eq!(headers["content-type"], "application/zip");
    let length: usize = headers["content-length"].to_str().unwrap().parse().unwrap();
    let body = res.bytes().await.expect("the whole archive");
    assert_eq!(body.len(), length);
    body.to_vec()
}

pub async fn archive_holds_every_done_rendition(b: &impl Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({"sizes": [48, 24]})).await;
    let id = batch["id"].as_str().unwrap();
    let archive = format!("/v1/batches/{id}/archive");

    // Nothing done yet: an empty archive is still an archive.
    assert!(unzip(&download(&app, &token, &archive).await).is_empty());

    // Clashing stems (in any case), a path and spaces in a name, one photo failed, one
    // still queued.
    let names = [
        "sunset.jpg",
        "Sunset.JPG",
        "sunset.png",
        "dir/../été 1.jpg",
        "broken.jpg",
        "late.jpg",
    ];
    let files: Vec<(&str, Vec<u8>)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, jpeg(96 + 8 * i as u32, 64)))
        .collect();
    let res = app.upload(&token, id, &files).await;
    assert_eq!(res.status(), 202, "{:?}", res.text().await);
    let ids = photo_ids(&json_of(res).await);
    let batch_id: Uuid = id.parse().unwrap();
    for job in app.take_jobs(names.len()).await {
        let i = ids
            .iter()
            .position(|p| *p == job.photo_id.to_string())
            .unwrap();
        match names[i] {
            "late.jpg" => {}
            "broken.jpg" => {
                let failed = PhotoOutcome::Failed {
                    code: FailureCode::CorruptImage,
                };
                app.ports
                    .state
                    .record_outcome(batch_id, job.photo_id, &failed)
                    .await
                    .unwrap();
            }
            _ => {
                app.finish(&job).await;
            }
        }
    }

    let zip = download(&app, &token, &archive).await;
    let entries = unzip(&zip);
    let got: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        got,
        [
            "sunset_48.jpg",
            "sunset_24.jpg",
            "Sunset_2_48.jpg",
            "Sunset_2_24.jpg",
            "sunset_3_48.jpg",
            "sunset_3_24.jpg",
            "été_1_48.jpg",
            "été_1_24.jpg",
        ]
    );
    // Each entry is its photo's rendition: stored as is, same bytes and dimensions as listed.
    let photos = app.photos(&token, id).await;
    let done: Vec<&Value> = photos["photos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "done")
        .collect();
    for (entry, (photo, size)) in entries
        .iter()
        .zip(done.iter().flat_map(|p| [(p, 48), (p, 24)]))
    {
        let output = photo["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["size"] == size)
            .unwrap();
        assert_eq!(entry.method, 0, "{}: stored", entry.name);
        assert_eq!(entry.data.len() as u64, output["bytes"].as_u64().unwrap());
        let img = image::load_from_memory(&entry.data).expect("a JPEG");
        assert_eq!(
            (u64::from(img.width()), u64::from(img.height())),
            (
                output["width"].as_u64().unwrap(),
                output["height"].as_u64().unwrap()
            ),
            "{}",
            entry.name
        );
        let served = app
            .get(&token, output["url"].as_str().unwrap())
            .sent()
            .await;
        assert_eq!(served.bytes().await.unwrap(), entry.data, "{}", entry.name);
    }
    let res = app.get(&token, &archive).sent().await;
    assert_eq!(
        res.headers()["content-disposition"],
        format!("attachment; filename=\"tirage-{id}.zip\"").as_str()
    );

    // One size only: the same stems.
    let small = unzip(&download(&app, &token, &format!("{archive}?sizes=24")).await);
    let got: Vec<&str> = small.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        got,
        [
            "sunset_24.jpg",
            "Sunset_2_24.jpg",
            "sunset_3_24.jpg",
            "été_1_24.jpg"
        ]
    );

    for (query, status, code) in [
        ("sizes=24,360", 404, "unknown_size"),
        ("sizes=abc", 400, "malformed_query"),
        ("sizes=", 400, "malformed_query"),
    ] {
        let res = app.get(&token, &format!("{archive}?{query}")).sent().await;
        expect_error(res, status, code).await;
    }
    let other = app.session().await;
    let res = app.get(&other, &archive).sent().await;
    expect_error(res, 404, "batch_not_found").await;
    let res = app
        .get(&token, &format!("/v1/batches/{}/archive", Uuid::new_v4()))
        .sent()
        .await;
    expect_error(res, 404, "batch_not_found").await;
}

/// Hooks of an object store whose `get_stream` finds nothing at one key (its `head` still does): a
/// rendition that vanishes between the archive's layout and its turn to stream. It counts
/// the `head` calls: the archive is laid out from the recorded sizes, with none. With
/// `stall` set, every `get_stream` waits forever: an archive that stops flowing (`stalled`
/// counts them).
struct Vanishing {
    key: std::sync::Mutex<Option<String>>,
    heads: std::sync::atomic::AtomicUsize,
    stall: std::sync::atomic::AtomicBool,
    stalled: std::sync::atomic::AtomicUsize,
}

impl Vanishing {
    /// The hooks, and `inner` behind them.
    fn over(inner: Arc<dyn ObjectStore>) -> (Arc<Vanishing>, Arc<dyn ObjectStore>) {
        let hooks = Arc::new(Vanishing {
            key: std::sync::Mutex::new(None),
            heads: std::sync::atomic::AtomicUsize::new(0),
            stall: std::sync::atomic::AtomicBool::new(false),
            stalled: std::sync::atomic::AtomicUsize::new(0),
        });
        let store = Intercepted {
            inner,
            hooks: hooks.clone(),
        };
        (hooks, Arc::new(store))
    }
}

#[async_trait]
impl ObjectHooks for Vanishing {
    async fn before_get_stream(&self, key: &str) -> Result<(), ObjectStoreError> {
        if self.stall.load(std::sync::atomic::Ordering::SeqCst) {
            self.stalled
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        if self.key.lock().unwrap().as_deref() == Some(key) {
            return Err(ObjectStoreError::NotFound(key.to_owned()));
        }
        Ok(())
    }
    async fn before_head(&self, _key: &str) -> Result<(), ObjectStoreError> {
        self.heads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

pub async fn archive_is_cut_when_a_rendition_vanishes(b: &impl Backend) {
    let TestDeps { mut ports, guard } = b.ports().await;
    let (vanishing, store) = Vanishing::over(ports.objects.clone());
    ports.objects = store;
    let app = TestApp::on(ports, guard, |_| {});
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({"sizes": [24]})).await;
    let id = batch["id"].as_str().unwrap();
    let ids = app.upload_ok(&token, id, 3).await;
    for job in app.take_jobs(3).await {
        app.finish(&job).await;
    }
    // The last photo's rendition: two entries stream before it is missed.
    let last = tirage_core::keys::rendition_key(
        id.parse().unwrap(),
        ids[2].parse().unwrap(),
        24,
        tirage_core::OutputFormat::Jpeg,
    );
    *vanishing.key.lock().unwrap() = Some(last);

    let res = match app
        .get(&token, &format!("/v1/batches/{id}/archive"))
        .send()
        .await
    {
        Ok(res) => res,
        // The cut came before the headers were flushed: the client saw no archive at all,
        // which is as good as a cut one (never a complete, corrupt ZIP).
        Err(e) => {
            assert!(!e.is_timeout() && e.status().is_none(), "{e:?}");
            return;
        }
    };
    assert_eq!(
        res.status(),
        200,
        "the sizes were all there when it started"
    );
    let announced: usize = res.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(announced > 0);
    match res.bytes().await {
        Err(e) => assert!(e.is_body() || e.is_decode(), "{e:?}"),
        Ok(body) => panic!(
            "the download completed ({} of {announced} bytes) although an entry was missing",
            body.len()
        ),
    }
    // The service is fine afterwards, and the archive is whole again once the object is.
    *vanishing.key.lock().unwrap() = None;
    let zip = download(&app, &token, &format!("/v1/batches/{id}/archive")).await;
    assert_eq!(unzip(&zip).len(), 3);
    assert_eq!(
        vanishing.heads.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the archive is planned from the sizes the worker recorded, not a HEAD per rendition"
    );
}

/// A session downloads at most `api.archives_per_session` archives at once, across
/// replicas: a finished download gives its slot back at once; one that stops flowing holds
/// it (a second is refused `too_many_archives`) until it lapses, unrenewed.
pub async fn archives_are_capped_per_session(b: &impl Backend) {
    let TestDeps { mut ports, guard } = b.ports().await;
    let (stalling, store) = Vanishing::over(ports.objects.clone());
    ports.objects = store;
    let app = Arc::new(TestApp::on(ports, guard, |s| {
        s.api.archives_per_session = 1;
        s.api.archives_per_address = 1;
        s.api.archive_lease_secs = 1;
    }));
    let token = app.session().await;
    let batch = app.create_batch(&token, json!({"sizes": [24]})).await;
    let id = batch["id"].as_str().unwrap().to_owned();
    app.upload_ok(&token, &id, 2).await;
    for job in app.take_jobs(2).await {
        app.finish(&job).await;
    }
    let archive = format!("/v1/batches/{id}/archive");
    download(&app, &token, &archive).await;
    download(&app, &token, &archive).await;

    stalling
        .stall
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let stalled = tokio::spawn({
        let (app, token, archive) = (app.clone(), token.clone(), archive.clone());
        async move {
            let res = app.get(&token, &archive).sent().await;
            let _ = res.bytes().await;
        }
    });
    // Once it holds its slot and has stopped flowing (a fixed sleep lost that race on a
    // loaded CI machine: the next request took the slot and stalled in turn).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stalling.stalled.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first archive never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let res = app.get(&token, &archive).sent().await;
    expect_error(res, 429, "too_many_archives").await;
    // Another session of the same client address: refused on the address's account.
    let other = app.session().await;
    let other_batch = app.create_batch(&other, json!({"sizes": [24]})).await;
    let other_archive = format!(
        "/v1/batches/{}/archive",
        other_batch["id"].as_str().unwrap()
    );
    let res = app.get(&other, &other_archive).sent().await;
    let body = expect_error(res, 429, "too_many_archives").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("address"), "{message}");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    stalling
        .stall
        .store(false, std::sync::atomic::Ordering::SeqCst);
    download(&app, &token, &archive).await;
    stalled.abort();
}
