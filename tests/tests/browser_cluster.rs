//! The web page in a real browser against the local cluster through nginx
//! (`deploy/local/cluster.sh`: nginx, two API replicas, two workers, Redis, RabbitMQ,
//! Garage): `tests/browser/page.mjs` in Debian's headless Chromium picks 20 real photos and a
//! corrupt file, uploads them straight to Garage through presigned URLs (the bucket's CORS
//! rule, set by scripts/garage.sh, lets the page's origin PUT), and checks the gallery, the
//! ZIP, the deletion and axe-core. `cluster.sh down` runs at the end, also when it fails.
//!
//! Needs what tests/cluster.rs needs, plus node, /usr/bin/chromium and
//! `tests/browser/node_modules` (scripts/install-deps.sh); fails, naming what is missing.
//! Environment: TIRAGE_BROWSER_E2E_PORT (nginx's port, default 18580).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tirage_e2e::cluster::Cluster;
use tirage_e2e::{photos, repo};

/// bench/corpus (real 1600p–4K photographs), built by bench/build-corpus.sh when absent.
fn corpus() -> PathBuf {
    assert!(!photos::corpus(4).is_empty(), "bench/corpus has no photo");
    repo().join("bench/corpus")
}

#[test]
fn a_person_uploads_through_nginx_straight_to_garage_and_gets_the_gallery_and_the_zip() {
    let browser = repo().join("tests/browser");
    assert!(
        Command::new("node").arg("--version").output().is_ok(),
        "node is not installed (scripts/install-deps.sh installs it)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing (scripts/install-deps.sh installs Debian's chromium)"
    );
    assert!(
        browser.join("node_modules/playwright-core").exists(),
        "tests/browser/node_modules is missing: run `npm ci` in tests/browser \
         (scripts/install-deps.sh does)"
    );
    let photos = corpus();
    let port = std::env::var("TIRAGE_BROWSER_E2E_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18580);
    let run_dir = std::env::temp_dir().join(format!("tirage-browser-e2e-{}", std::process::id()));
    let cluster = Cluster::up(port, run_dir, &[]);
    let output = Command::new("node")
        .arg(browser.join("page.mjs"))
        .args(["--base", &cluster.base()])
        .arg("--photos")
        .arg(repo().join("cli/tests/fixtures/photos"))
        .arg("--photos")
        .arg(&photos)
        // The file picker here; the standalone test drops.
        .arg("--pick")
        .output()
        .expect("run node");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "tests/browser/page.mjs failed against the cluster ({}); logs in {}/logs:\n{stderr}",
        output.status,
        cluster.run_dir.display()
    );
    drop(cluster);
}
