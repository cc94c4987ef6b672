//! The callback target of the worker tests: a minimal HTTP listener that records every
//! request and can answer 500 to the first few.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The requests a [`Hook`] received: headers (lower-cased names) and body.
pub type Requests = Arc<std::sync::Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

/// A minimal HTTP listener recording every request it receives (the callback target).
pub struct Hook {
    pub url: String,
    pub requests: Requests,
    /// Answers 500 to this many requests first.
    pub fail_first: Arc<AtomicU32>,
}

pub async fn hook(fail_first: u32) -> Hook {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind hook");
    let addr = listener.local_addr().expect("hook addr");
    let requests: Requests = Arc::default();
    let fail = Arc::new(AtomicU32::new(fail_first));
    let (reqs, fail2) = (requests.clone(), fail.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let reqs = reqs.clone();
            let fail = fail2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then exactly Content-Length bytes of body.
                let (head_end, headers) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_string();
                        let headers: Vec<(String, String)> = head
                            .lines()
                            .skip(1)
                            .filter_map(|l| l.split_once(':'))
                            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                            .collect();
                        break (i + 4, headers);
                    }
                };
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head_end..].to_vec();
                let failing = fail
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                reqs.lock().unwrap().push((headers, body));
                let status = if failing {
                    "500 Internal Server Error"
                } else {
                    "204 No Content"
                };
                let _ = sock
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    Hook {
        url: format!("http://{addr}/hooks/tirage"),
        requests,
        fail_first: fail,
    }
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
