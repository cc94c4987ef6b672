//! Callback receivers the tests point batches at, and the HTTP/1.1 request reading every
//! receiver of the tests shares (callbacks, the OTLP trace receiver).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncReadExt;

/// A callback receiver that accepts every connection, reads what is sent and never answers:
/// the cheapest denial of service a callback URL allows, within any anonymous session's
/// reach.
pub struct SilentReceiver {
    pub url: String,
    pub port: u16,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
}

impl SilentReceiver {
    /// Listens on `ip` (a port of its own), until the test's runtime ends.
    pub async fn start(ip: &str) -> SilentReceiver {
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("bind the silent receiver");
        let port = listener.local_addr().expect("its address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut chunk = [0u8; 4096];
                    // Held open until the caller gives up and closes it.
                    while sock.read(&mut chunk).await.is_ok_and(|n| n > 0) {}
                });
            }
        });
        SilentReceiver {
            url: format!("http://{ip}:{port}/hooks/silent"),
            port,
            accepted,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads the next HTTP/1.1 request on `socket`: its head (request line and headers, as text)
/// and its `content-length` body. `buffered` holds what was read past the previous request
/// on a keep-alive connection and keeps what is read past this one. `None` when the
/// connection closes before a whole head; a body cut short by the peer is returned as far as
/// it came.
pub async fn read_request(
    socket: &mut tokio::net::TcpStream,
    buffered: &mut Vec<u8>,
) -> Option<(String, Vec<u8>)> {
    let mut chunk = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(at) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = socket.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buffered.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).into_owned();
    let length = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buffered.len() < head_end + length {
        match socket.read(&mut chunk).await {
            Ok(n) if n > 0 => buffered.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let end = buffered.len().min(head_end + length);
    let body = buffered[head_end..end].to_vec();
    buffered.drain(..end);
    Some((head, body))
}

/// A header's value in a request head (the first of that name, any case), trimmed.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}
