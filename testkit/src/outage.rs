//! A TCP link to a real service that a test can cut and restore, to show what the code does
//! while Redis, RabbitMQ or S3 is down and that it recovers by itself when the service
//! returns — over real connections to the real service, with no wrapper around the adapter.
//!
//! While the link is up it listens on its own port and pipes every connection to the
//! service. [`ServiceLink::cut`] closes the listening socket (new connections are refused,
//! as by a stopped service) and closes every connection in flight;
//! [`ServiceLink::stall`] freezes the service instead, as a hung process or a black-holed
//! network does: connections, open ones and new ones alike, stay open and are accepted, but
//! no byte passes in either direction (nor the end of a stream), so every call waits for its
//! own timeout rather than failing at once. [`ServiceLink::restore`] ends either: it listens
//! on the same port again after a cut, and lets the held bytes through after a stall.

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP link from `127.0.0.1:{port}` to a service, which a test can cut or stall.
pub struct ServiceLink {
    port: u16,
    target: SocketAddr,
    /// `true` while up; piping tasks end when it turns `false`.
    up: watch::Sender<bool>,
    /// `false` while stalled: piping tasks hold what they read until it turns `true`.
    flowing: watch::Sender<bool>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl ServiceLink {
    /// An up link to `target` (`host:port` of the real service).
    pub async fn start(target: &str) -> ServiceLink {
        let target = tokio::net::lookup_host(target)
            .await
            .unwrap_or_else(|e| panic!("cannot resolve {target}: {e}"))
            .next()
            .unwrap_or_else(|| panic!("{target} resolves to nothing"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, _) = watch::channel(true);
        let (flowing, _) = watch::channel(true);
        let link = ServiceLink {
            port,
            target,
            up,
            flowing,
            acceptor: Mutex::new(None),
        };
        link.serve(listener);
        link
    }

    /// A link that starts cut: the service looks down until [`ServiceLink::restore`].
    pub async fn start_cut(target: &str) -> ServiceLink {
        let link = ServiceLink::start(target).await;
        link.cut();
        link
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:{port}`, to put in a URL in place of the service's own address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The service goes away: refused connections, and every open one closed.
    pub fn cut(&self) {
        self.up.send_replace(false);
        if let Some(acceptor) = self.acceptor.lock().unwrap().take() {
            acceptor.abort();
        }
    }

    /// The service freezes: every connection, open or new (new ones are still accepted),
    /// stays open, but from now on no byte is passed on in either direction, nor the end of
    /// a stream, until [`ServiceLink::restore`]. What a client sends meanwhile is held, not
    /// lost. A call through the link hangs until its own timeout, where a cut link makes it
    /// fail at once.
    pub fn stall(&self) {
        self.flowing.send_replace(false);
    }

    /// The service is back: after [`ServiceLink::cut`], on the same port; after
    /// [`ServiceLink::stall`], on the same connections, which pass what they held first.
    pub async fn restore(&self) {
        self.flowing.send_replace(true);
        let listening = self.acceptor.lock().unwrap().is_some();
        if listening {
            // Only stalled (or never cut): the listener and the connections are still there.
            return;
        }
        // The port was ours a moment ago; a few tries cover the socket's teardown.
        let mut listener = None;
        for _ in 0..50 {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        let listener = listener.unwrap_or_else(|| panic!("port {} was taken", self.port));
        self.up.send_replace(true);
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target;
        let up = self.up.clone();
        let flowing = self.flowing.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut down = up.subscribe();
                let flow = flowing.subscribe();
                tokio::spawn(async move {
                    let Ok(service) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (service_read, service_write) = service.into_split();
                    let requests = pump(client_read, service_write, flow.clone());
                    let answers = pump(service_read, client_write, flow);
                    tokio::select! {
                        // Both directions to their end, or the first failure of either.
                        _ = async { tokio::try_join!(requests, answers) } => {}
                        // Both sockets close when this task ends.
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        *self.acceptor.lock().unwrap() = Some(acceptor);
    }
}

/// Copies `from` to `to` until the end of `from`, then shuts `to`'s writing side down (as
/// `tokio::io::copy_bidirectional` does each way). While `flowing` is `false` (a stalled
/// link) what it read is held, and so is the end of the stream: nothing reaches `to`.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    mut flowing: watch::Receiver<bool>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buf).await;
        if flowing.wait_for(|flowing| *flowing).await.is_err() {
            return Err(std::io::Error::other("the link is gone"));
        }
        match read? {
            0 => return to.shutdown().await,
            n => to.write_all(&buf[..n]).await?,
        }
    }
}

impl Drop for ServiceLink {
    fn drop(&mut self) {
        self.cut();
    }
}

/// `url` with its `host:port` replaced by `addr`: `redis://127.0.0.1:6379/0` becomes
/// `redis://127.0.0.1:{link}/0`. User info, path and query are kept.
pub fn url_via(url: &str, addr: &str) -> String {
    let (scheme, rest) = url
        .split_once("://")
        .unwrap_or_else(|| panic!("not a URL: {url}"));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let userinfo = authority.rfind('@').map_or("", |at| &authority[..=at]);
    format!("{scheme}://{userinfo}{addr}{tail}")
}

/// The `host:port` a URL points at, with the scheme's default port when it names none.
pub fn url_addr(url: &str) -> String {
    let (scheme, rest) = url
        .split_once("://")
        .unwrap_or_else(|| panic!("not a URL: {url}"));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_port = authority
        .rfind('@')
        .map_or(authority, |at| &authority[at + 1..]);
    if host_port.contains(':') {
        return host_port.to_owned();
    }
    let port = match scheme {
        "redis" => 6379,
        "amqp" => 5672,
        "https" => 443,
        _ => 80,
    };
    format!("{host_port}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redirected_through_a_link() {
        assert_eq!(
            url_via("amqp://guest:guest@127.0.0.1:5672/%2f", "127.0.0.1:9"),
            "amqp://guest:guest@127.0.0.1:9/%2f"
        );
        assert_eq!(
            url_via("http://127.0.0.1:3900", "127.0.0.1:9"),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            url_addr("amqp://guest:guest@localhost/%2f"),
            "localhost:5672"
        );
        assert_eq!(url_addr("redis://127.0.0.1:6380/1"), "127.0.0.1:6380");
    }

    /// A link to an echo service, and a connection through it that has echoed once.
    async fn echo_link() -> (ServiceLink, TcpStream) {
        let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service_addr = service.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = service.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let link = ServiceLink::start(&service_addr).await;
        let mut open = TcpStream::connect(link.addr()).await.unwrap();
        open.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        (link, open)
    }

    #[tokio::test]
    async fn a_cut_link_refuses_and_a_restored_one_pipes() {
        let (link, mut open) = echo_link().await;
        let mut buf = [0u8; 4];

        link.cut();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            open.read_to_end(&mut rest),
        )
        .await
        .expect("an open connection ends when the link is cut");
        assert!(closed.is_err() || rest.is_empty());
        assert!(
            TcpStream::connect(link.addr()).await.is_err(),
            "refused while cut"
        );

        link.restore().await;
        let mut again = TcpStream::connect(link.addr()).await.unwrap();
        again.write_all(b"pong").await.unwrap();
        again.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    }

    #[tokio::test]
    async fn a_stalled_link_accepts_but_passes_nothing_until_restored() {
        use std::time::Duration;
        let (link, mut open) = echo_link().await;
        let mut buf = [0u8; 4];

        link.stall();
        open.write_all(b"held").await.unwrap();
        let mut late = TcpStream::connect(link.addr())
            .await
            .expect("a stalled link still accepts");
        late.write_all(b"late").await.unwrap();
        for stream in [&mut open, &mut late] {
            let mut one = [0u8; 1];
            assert!(
                tokio::time::timeout(Duration::from_millis(300), stream.read(&mut one))
                    .await
                    .is_err(),
                "no byte (nor the end of the stream) passes while stalled"
            );
        }

        link.restore().await;
        open.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"held", "what was sent meanwhile arrives");
        late.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"late");
    }
}
