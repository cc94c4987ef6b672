//! A node's life: killed, it does nothing more, as a process gone with SIGKILL. Every port
//! of the node (its state store, object store and queue wrappers) runs its calls through
//! [`Life::guard`], which never returns once the node is dead, whether the call had not
//! started, was under way (its effect may or may not have happened, as a connection cut
//! mid-call) or had just returned (the node never learns). Its consumer streams are dropped
//! at the kill, so the queue hands their unsettled deliveries to other consumers, as a
//! broker does when a dead worker's connection closes.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tirage_ports::JobStream;
use tokio_util::sync::CancellationToken;

/// A consumer stream the node holds, dropped at its kill.
pub type HeldStream = Arc<tokio::sync::Mutex<Option<Box<dyn JobStream>>>>;

#[derive(Default)]
pub struct Life {
    killed: CancellationToken,
    streams: Mutex<Vec<HeldStream>>,
}

impl Life {
    pub fn is_dead(&self) -> bool {
        self.killed.is_cancelled()
    }

    /// Resolves once the node is killed.
    pub async fn killed(&self) {
        self.killed.cancelled().await;
    }

    /// `call`, unless the node dies before it returns: then never.
    pub async fn guard<T>(&self, call: impl Future<Output = T>) -> T {
        if self.is_dead() {
            return std::future::pending().await;
        }
        let answered = tokio::select! {
            biased;
            () = self.killed.cancelled() => None,
            answer = call => Some(answer),
        };
        match answered {
            Some(answer) if !self.is_dead() => answer,
            _ => std::future::pending().await,
        }
    }

    /// Keeps `stream` to drop at the kill.
    pub fn hold(&self, stream: HeldStream) {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stream);
    }

    /// Kills the node: no call of its returns from now on, its streams are dropped.
    pub async fn kill(&self) {
        self.killed.cancel();
        let streams = std::mem::take(&mut *self.streams.lock().unwrap_or_else(|e| e.into_inner()));
        for stream in streams {
            stream.lock().await.take();
        }
    }
}
