//! What tests/tests/abuse_streams.rs drives the cluster with: the cluster itself, an HTTP
//! client per session, a webhook receiver that verifies the documented signature scheme
//! (docs/SECURITY.md) with its own HMAC code, and readings of the API processes.

use std::collections::HashSet;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

pub use tirage_e2e::api::Api;
pub use tirage_e2e::cluster::Cluster;
pub use tirage_testkit::SilentReceiver;
use tirage_testkit::receivers::{header, read_request};

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `cluster.sh up` with two API replicas and two workers, on TIRAGE_ABUSE_PORT (18680).
pub fn cluster_up(env: &[(&str, String)]) -> Cluster {
    let port = std::env::var("TIRAGE_ABUSE_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18680);
    let run_dir = std::env::temp_dir().join(format!("tirage-abuse-streams-{}", std::process::id()));
    Cluster::up(port, run_dir, env)
}

/// The pids of the two API replicas.
pub fn api_pids(cluster: &Cluster) -> Vec<u32> {
    ["api-1", "api-2"]
        .iter()
        .map(|name| cluster.live_pid(name, Duration::from_secs(10)))
        .collect()
}

/// `tirage_worker_callbacks_total{outcome}` summed over both workers.
pub async fn callbacks(cluster: &Cluster, outcome: &str) -> u64 {
    let mut total = 0;
    for i in 0..2 {
        let url = format!("http://127.0.0.1:{}/metrics", cluster.port + 101 + i);
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let line = format!("tirage_worker_callbacks_total{{outcome=\"{outcome}\"}} ");
        total += text
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .map_or(0, |n| n.trim().parse::<f64>().unwrap_or(0.0) as u64);
    }
    total
}

/// Peak resident set of a process (`VmHWM` in /proc/<pid>/status), in KiB.
pub fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// A JPEG of noise: it compresses badly, so its renditions are large.
pub fn noise_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let img = image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let [r, g, b, ..] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    out
}

/// This machine's name, when it resolves (through /etc/hosts) to a private or loopback
/// address only.
pub fn private_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/etc/hostname")
        .ok()?
        .trim()
        .to_string();
    if name.is_empty() {
        return None;
    }
    let addrs: Vec<IpAddr> = (name.as_str(), 80)
        .to_socket_addrs()
        .ok()?
        .map(|a| a.ip())
        .collect();
    let inside = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    (!addrs.is_empty() && addrs.iter().all(inside)).then_some(name)
}

/// One multipart upload of `bytes` as `name`, whatever it answers.
async fn upload_once(
    api: &Api,
    batch: &str,
    name: &str,
    bytes: &[u8],
) -> reqwest::Result<reqwest::Response> {
    let part = reqwest::multipart::Part::bytes(bytes.to_vec())
        .file_name(name.to_string())
        .mime_str("image/jpeg")
        .unwrap();
    api.http
        .post(format!("{}/v1/batches/{batch}/photos", api.base))
        .bearer_auth(&api.token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
}

/// One multipart upload that must be accepted at once, without an `Idempotency-Key`; the photo id and the response body.
pub async fn upload_now(api: &Api, batch: &str, name: &str, bytes: &[u8]) -> (String, Value) {
    let resp = upload_once(api, batch, name, bytes).await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "upload {name}: {body}");
    (
        body["photos"][0]["id"]
            .as_str()
            .expect("photo id")
            .to_string(),
        body,
    )
}

/// Uploads as a well-behaved client under backpressure: on 503 `server_busy` (the replica
/// streams all it may) or 429 `too_many_uploads` (this session streams its share) waits
/// `Retry-After` and tries again. Returns how many such answers it met.
pub async fn upload_retrying_busy(api: &Api, batch: &str, name: &str, bytes: &[u8]) -> u32 {
    let mut busy = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(Instant::now() < deadline, "{name} never accepted");
        match upload_once(api, batch, name, bytes).await {
            Ok(resp) if resp.status() == StatusCode::ACCEPTED => return busy,
            Ok(resp)
                if resp.status() == StatusCode::SERVICE_UNAVAILABLE
                    || resp.status() == StatusCode::TOO_MANY_REQUESTS =>
            {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .expect("a refusal to come back later carries Retry-After");
                let body: Value = resp.json().await.unwrap();
                let expected = if status == StatusCode::SERVICE_UNAVAILABLE {
                    "server_busy"
                } else {
                    "too_many_uploads"
                };
                assert_eq!(body["error"]["code"], expected, "{body}");
                busy += 1;
                tokio::time::sleep(Duration::from_secs(retry_after)).await;
            }
            Ok(resp) => {
                let status = resp.status();
                panic!("{name}: {status} {}", resp.text().await.unwrap_or_default());
            }
            // A refusal that raced the body's sending can reach the client as a reset.
            Err(e) => {
                eprintln!("{name}: transport error, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

fn hmac_hex(key: &str, parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// `X-Tirage-Signature` as docs/SECURITY.md documents it, computed here independently.
pub fn sign(key: &str, t: i64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hmac_hex(key, &[t.to_string().as_bytes(), b".", body])
    )
}

/// The scheme before issue 12 (MAC over the body alone), which replays forever.
pub fn legacy_body_only(key: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(key, &[body]))
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Captured {
    pub body: Vec<u8>,
    pub signature: Option<String>,
    pub from_worker: bool,
    pub status: u16,
}

#[derive(Default)]
struct Seen {
    requests: Vec<Captured>,
    signatures: HashSet<String>,
}

/// A webhook receiver on `host`, verifying the documented scheme with a 300 s tolerance
/// and refusing a signature it has seen (a replay within the window): 200 accepted, 401
/// unsigned or forged, 409 replayed.
pub struct Receiver {
    pub port: u16,
    host: String,
    secret: String,
    seen: Arc<Mutex<Seen>>,
}

const TOLERANCE_SECS: i64 = 300;

fn verify(secret: &str, body: &[u8], header: &str, now: i64) -> Result<(), &'static str> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1.push(value.to_string()),
            _ => {}
        }
    }
    let t = t.ok_or("no timestamp")?;
    if (now - t).abs() > TOLERANCE_SECS {
        return Err("outside tolerance");
    }
    let expected = sign(secret, t, body);
    let expected = expected
        .split_once(",v1=")
        .map(|(_, v)| v)
        .unwrap_or_default();
    // Constant time, as a receiver must compare.
    let same = |v: &String| {
        v.len() == expected.len()
            && v.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    };
    if v1.iter().any(same) {
        Ok(())
    } else {
        Err("mismatch")
    }
}

impl Receiver {
    pub async fn start(host: &str, secret: &str) -> Receiver {
        let listener = TcpListener::bind((host, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (state, key) = (seen.clone(), secret.to_string());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (state, key) = (state.clone(), key.clone());
                tokio::spawn(async move {
                    let read = read_request(&mut socket, &mut Vec::new()).await;
                    let Some((headers, body)) = read else {
                        return;
                    };
                    let signature = header(&headers, "x-tirage-signature");
                    let from_worker = header(&headers, "user-agent")
                        .is_some_and(|ua| ua.starts_with("tirage-worker/"));
                    let status = {
                        let mut seen = state.lock().unwrap();
                        let status = match &signature {
                            None => 401,
                            Some(sig) => match verify(&key, &body, sig, unix_now()) {
                                Err(_) => 401,
                                Ok(()) if !seen.signatures.insert(sig.clone()) => 409,
                                Ok(()) => 200,
                            },
                        };
                        seen.requests.push(Captured {
                            body,
                            signature,
                            from_worker,
                            status,
                        });
                        status
                    };
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        Receiver {
            port,
            host: host.to_string(),
            secret: secret.to_string(),
            seen,
        }
    }

    pub async fn wait_first_accepted(&self, within: Duration) -> Captured {
        let deadline = Instant::now() + within;
        loop {
            if let Some(c) = self
                .seen
                .lock()
                .unwrap()
                .requests
                .iter()
                .find(|c| c.from_worker && c.status == 200)
            {
                return c.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no verified callback within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// POSTs `body` with `signature` to this receiver; its status.
    pub async fn send(&self, body: &[u8], signature: Option<&str>) -> u16 {
        let mut req = reqwest::Client::new()
            .post(format!("http://{}:{}/hook", self.host, self.port))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("X-Tirage-Signature", sig);
        }
        req.send().await.unwrap().status().as_u16()
    }

    /// This receiver's verification at another time.
    pub fn verify_at(&self, body: &[u8], header: &str, now: i64) -> Result<(), &'static str> {
        verify(&self.secret, body, header, now)
    }

    /// Requests of any kind received.
    pub fn hits(&self) -> usize {
        self.seen.lock().unwrap().requests.len()
    }

    /// Requests a worker sent.
    pub fn worker_hits(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|c| c.from_worker)
            .count()
    }
}
