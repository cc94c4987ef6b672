//! The web page in a real browser against `tirage standalone`: `tests/browser/page.mjs`
//! drives Debian's headless Chromium through playwright-core (drop 20 real photos and a
//! corrupt file, progress, gallery, ZIP, delete, axe-core). Needs node, /usr/bin/chromium
//! and `tests/browser/node_modules` (`scripts/install-deps.sh` installs all three); fails,
//! naming what is missing, without them.
//! `TIRAGE_BROWSER_SHOTS=DIR` saves the screenshots docs/ shows; `TIRAGE_BROWSER_JOBS=N`
//! runs the server with `--jobs N` (1 resizes one photo at a time: "mid-batch" lasts long
//! enough for its screenshot).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Standalone, fixtures};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// bench/corpus (real 1600p–4K photographs), built by bench/build-corpus.sh when absent.
fn corpus() -> PathBuf {
    let corpus = repo().join("bench/corpus");
    let photos = std::fs::read_dir(&corpus).map_or(0, |d| d.count());
    if photos < 4 {
        let status = Command::new(repo().join("bench/build-corpus.sh"))
            .status()
            .expect("run bench/build-corpus.sh");
        assert!(status.success(), "bench/build-corpus.sh failed");
    }
    corpus
}

/// Runs tests/browser/page.mjs against `base`; panics with its output when a check fails.
fn run_page(base: &str, photo_dirs: &[PathBuf], extra: &[&str]) {
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
        browser.join("node_modules/playwright-core").exists()
            && browser.join("node_modules/axe-core").exists(),
        "tests/browser/node_modules is missing: run `npm ci` in tests/browser \
         (scripts/install-deps.sh does)"
    );
    let mut cmd = Command::new("node");
    cmd.arg(browser.join("page.mjs")).args(["--base", base]);
    for dir in photo_dirs {
        cmd.arg("--photos").arg(dir);
    }
    if let Ok(shots) = std::env::var("TIRAGE_BROWSER_SHOTS") {
        cmd.args(["--shots", &shots]);
    }
    let output = cmd.args(extra).output().expect("run node");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "tests/browser/page.mjs failed ({}):\n{stderr}",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("\"ok\":true"), "page.mjs printed: {stdout}");
}

#[test]
fn a_person_drops_photos_on_the_page_and_gets_the_gallery_and_the_zip() {
    let jobs = std::env::var("TIRAGE_BROWSER_JOBS").ok();
    let args: Vec<&str> = match &jobs {
        Some(n) => vec!["--jobs", n.as_str()],
        None => vec![],
    };
    let server = Standalone::start_with(&args, &[]);
    run_page(&server.base, &[fixtures(), corpus()], &[]);
}
