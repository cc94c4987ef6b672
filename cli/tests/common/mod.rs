//! Starts the real `tirage` binary: `tirage standalone --port 0` as a server, `tirage upload`
//! as a client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tirage");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photos")
}

/// A `tirage standalone` process on a free port, with its own data directory.
pub struct Standalone {
    child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl Standalone {
    pub fn start() -> Standalone {
        Self::start_with(&[], &[])
    }

    /// `args` are added to the command line, `env` to its environment.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Standalone {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["standalone", "--port", "0", "--data"])
            .arg(dir.path().join("data"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tirage standalone");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps reading after the URL so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("http://") => break line.trim().to_owned(),
                Ok(_) => continue,
                Err(_) => {
                    let _ = child.kill();
                    panic!("tirage standalone printed no URL within 60 s");
                }
            }
        };
        Standalone { child, base, dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then the exit status (or a panic after `within`).
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("tirage standalone did not stop within {within:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `tirage upload` to completion (in a blocking thread: the tests' servers run on the
/// async runtime meanwhile).
pub async fn upload(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("upload")
            .args(args)
            .output()
            .expect("run tirage upload")
    })
    .await
    .unwrap()
}

pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Width and height of an image file's pixels.
pub fn dimensions(path: &Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What a rendition of `(w, h)` at `size` must measure: the short side becomes `size`
/// (never upscaled), the long side keeps the aspect ratio to within a pixel.
pub fn assert_rendition(original: (u32, u32), size: u32, got: (u32, u32), what: &str) {
    let (w, h) = original;
    let short = w.min(h);
    let target = size.min(short);
    let (gw, gh) = got;
    assert_eq!(gw.min(gh), target, "{what}: short side of {gw}x{gh}");
    let expect_long = f64::from(w.max(h)) * f64::from(target) / f64::from(short);
    let long = f64::from(gw.max(gh));
    assert!(
        (long - expect_long).abs() <= 1.0,
        "{what}: long side {long}, expected {expect_long:.1}"
    );
    assert_eq!(w >= h, gw >= gh, "{what}: orientation changed");
}

/// Files in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
