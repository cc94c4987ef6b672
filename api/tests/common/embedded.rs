//! The embedded backend: memory state, in-process queue, file-system objects. Fast, and
//! needs no service; `embedded.rs` runs the suite on it and `schema_fuzz.rs` the fuzzer.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tirage_api::{PortNames, Ports};
use tirage_embedded::{FsObjectStore, FsSettings, InProcessQueue, MemoryStateStore};
use tirage_ports::StateStore;

use super::{Backend, TestDeps};

pub struct Embedded;

#[async_trait]
impl Backend for Embedded {
    async fn ports(&self) -> TestDeps {
        let dir = tempfile::tempdir().expect("temp dir");
        let objects = FsObjectStore::connect(&FsSettings {
            root: dir.path().to_path_buf(),
            public_base_url: "http://127.0.0.1:9".into(),
            presign_secret: "test-presign-secret".to_owned().into(),
        })
        .await
        .expect("fs object store");
        TestDeps {
            ports: Ports {
                state: Arc::new(MemoryStateStore::new()),
                objects: Arc::new(objects),
                queue: Arc::new(InProcessQueue::new()),
                names: PortNames::embedded(),
            },
            guard: Box::new(dir),
        }
    }

    async fn dead_state(&self) -> Arc<dyn StateStore> {
        super::dead_redis().await
    }

    /// The file-system store's presigned URLs point at `tirage standalone`, which is not
    /// running here: put the bytes where that PUT would have.
    async fn upload_ticket(&self, ports: &Ports, ticket: &Value, body: Vec<u8>) {
        let url = url::Url::parse(ticket["url"].as_str().unwrap()).unwrap();
        let key = url
            .path()
            .strip_prefix("/v1/objects/")
            .expect("fs presigned path");
        ports
            .objects
            .put(key, body.into(), "image/jpeg")
            .await
            .expect("store the upload");
    }
}
