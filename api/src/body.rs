//! Request bodies into the object store. actix-web's bodies (a request payload, a multipart
//! part) live on one thread and are not `Send`, while the store consumes a `Send` stream:
//! the bytes are pumped through a small channel whose receiving end is that stream, both
//! sides running in the calling task.

use std::future::Future;

use bytes::Bytes;
use futures::{SinkExt, Stream, StreamExt};
use tirage_ports::ByteStream;

/// Chunks in flight between the body and the store.
const CHANNEL_DEPTH: usize = 4;

/// Runs `store` on a `Send` stream of `body`'s bytes and returns what it returns. A read
/// error of the body reaches the store as the stream's last item.
pub async fn pump<S, E, F, Fut, T>(body: &mut S, store: F) -> T
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
    F: FnOnce(ByteStream) -> Fut,
    Fut: Future<Output = T>,
{
    let (mut tx, rx) =
        futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL_DEPTH);
    let put = store(Box::pin(rx));
    let feed = async move {
        while let Some(chunk) = body.next().await {
            let item = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = item.is_err();
            // A closed channel means the store stopped reading (limit hit or store error);
            // its result says which.
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    };
    let (stored, ()) = futures::join!(put, feed);
    stored
}

/// Reads `body` to its end, dropping the bytes: a part the request must get past.
pub async fn discard<S, E>(body: &mut S) -> Result<(), E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    while let Some(chunk) = body.next().await {
        chunk?;
    }
    Ok(())
}
