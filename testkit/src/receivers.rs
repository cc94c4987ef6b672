//! Callback receivers the tests point batches at.

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
