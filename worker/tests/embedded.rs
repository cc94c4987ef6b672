//! The worker suite on the embedded adapters: memory state store, in-process queue, file
//! system object store. Fast, and the same adapters `tirage standalone` runs on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod suite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use tirage_embedded::inprocess::Event;
use tirage_embedded::{FsObjectStore, FsSettings, InProcessQueue, MemoryStateStore};
use tirage_ports::WorkItem;
use tirage_runtime::PortNames;
use tirage_testkit::InProcessTestExt;
use tirage_worker::Ports;
use tokio::sync::broadcast;

use common::{DeadLetter, EventSource, Harness};

struct Embedded {
    ports: Ports,
    queue: InProcessQueue,
    _dir: tempfile::TempDir,
}

#[async_trait]
impl Harness for Embedded {
    fn ports(&self) -> Ports {
        self.ports.clone()
    }

    async fn take_dead_letters(&self) -> Vec<DeadLetter> {
        let mut out = Vec::new();
        while let Some(d) = self.queue.take_dead_letter().await.unwrap() {
            out.push(DeadLetter {
                item: serde_json::from_slice::<WorkItem>(&d.body).ok(),
                reason: d.reason,
            });
        }
        out
    }

    async fn subscribe_events(&self) -> Box<dyn EventSource> {
        Box::new(Events(self.queue.subscribe_events()))
    }
}

struct Events(broadcast::Receiver<Event>);

#[async_trait]
impl EventSource for Events {
    async fn next(&mut self, wait: Duration) -> Option<Vec<u8>> {
        loop {
            match tokio::time::timeout(wait, self.0.recv()).await {
                Ok(Ok(e)) if e.routing_key == "batch.completed" => return Some(e.payload),
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => panic!("event subscription failed: {e}"),
                Err(_) => return None,
            }
        }
    }
}

async fn embedded() -> Arc<dyn Harness> {
    let dir = tempfile::tempdir().unwrap();
    let objects = FsObjectStore::connect(&FsSettings {
        root: dir.path().to_path_buf(),
        public_base_url: "http://127.0.0.1:1".into(),
        presign_secret: SecretString::from("presign"),
    })
    .await
    .unwrap();
    let queue = InProcessQueue::new();
    Arc::new(Embedded {
        ports: Ports {
            state: Arc::new(MemoryStateStore::new()),
            objects: Arc::new(objects),
            queue: Arc::new(queue.clone()),
            names: PortNames::embedded(),
        },
        queue,
        _dir: dir,
    })
}

suite!(embedded);
