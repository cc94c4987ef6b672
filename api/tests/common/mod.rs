//! The API test harness: an app on port 0 over dependencies a [`Backend`] builds, an HTTP
//! client, a stand-in for the worker, and the scenarios (in `scenarios.rs`), written once
//! and run by every backend (`embedded.rs`, `cluster.rs`).

#![allow(dead_code)]

pub mod scenarios;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use async_trait::async_trait;
use serde_json::{Value, json};
use tirage_api::{Application, Dependencies, Settings};
use tirage_shared::keys;
use tirage_shared::model::{PhotoOutcome, Rendition, ResizeJob};
use tirage_shared::ports::{
    JobQueue, JobStream, ObjectStore, QueueError, RecordResult, StateStore, WorkItem,
};
use tokio::sync::Mutex;
use uuid::Uuid;

/// Fresh, isolated dependencies for one test, plus whatever must live as long as they do
/// (a temp directory, a queue to delete).
pub struct TestDeps {
    pub deps: Dependencies,
    pub guard: Box<dyn Any + Send + Sync>,
}

/// How a suite builds its dependencies.
#[async_trait]
pub trait Backend: Sync {
    /// Dependencies no other test shares (own key prefix, object prefix, queue).
    async fn deps(&self) -> TestDeps;
    /// A state store adapter pointed at a closed port.
    async fn dead_state(&self) -> Arc<dyn StateStore>;
    /// Does what a browser does with an upload ticket from `POST /uploads`.
    async fn upload_ticket(&self, deps: &Dependencies, ticket: &Value, body: Vec<u8>);
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub deps: Dependencies,
    pub settings: Settings,
    handle: ServerHandle,
    jobs: Mutex<Option<Box<dyn JobStream>>>,
    _guard: Box<dyn Any + Send + Sync>,
}

pub fn test_settings() -> Settings {
    let mut settings = Settings::load_with(None).expect("config/default.toml loads");
    settings.api.port = 0;
    settings.api.workers = 2;
    settings.api.shutdown_timeout_secs = 1;
    settings.api.events_poll_ms = 50;
    settings
}

impl TestApp {
    pub async fn spawn(backend: &impl Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: &impl Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        let TestDeps { deps, guard } = backend.deps().await;
        Self::on(deps, guard, tweak)
    }

    pub fn on(
        deps: Dependencies,
        guard: Box<dyn Any + Send + Sync>,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestApp {
        let mut settings = test_settings();
        tweak(&mut settings);
        let app = Application::build_with(settings.clone(), deps.clone()).expect("app builds");
        Self::running(app, settings, deps, guard)
    }

    /// Runs an application built elsewhere (`Application::build`); `deps` reach the same
    /// stores and queue, for the test's own checks.
    pub fn running(
        app: Application,
        settings: Settings,
        deps: Dependencies,
        guard: Box<dyn Any + Send + Sync>,
    ) -> TestApp {
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            deps,
            settings,
            handle,
            jobs: Mutex::new(None),
            _guard: guard,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn session(&self) -> String {
        let res = self
            .client
            .post(self.url("/v1/sessions"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn get(&self, token: &str, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(token)
    }

    pub fn post(&self, token: &str, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(token)
    }

    pub async fn create_batch(&self, token: &str, body: Value) -> Value {
        let res = self
            .post(token, "/v1/batches")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        res.json().await.unwrap()
    }

    pub async fn upload(
        &self,
        token: &str,
        batch_id: &str,
        files: &[(&str, Vec<u8>)],
    ) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone())
                    .file_name(name.to_string())
                    .mime_str("image/jpeg")
                    .unwrap(),
            );
        }
        self.post(token, &format!("/v1/batches/{batch_id}/photos"))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn upload_ok(&self, token: &str, batch_id: &str, n: usize) -> Vec<String> {
        let files: Vec<(String, Vec<u8>)> = (0..n)
            .map(|i| (format!("p{i}.jpg"), jpeg(64 + i as u32, 48)))
            .collect();
        let refs: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        let res = self.upload(token, batch_id, &refs).await;
        assert_eq!(res.status(), 202, "{:?}", res.text().await);
        photo_ids(&res.json().await.unwrap())
    }

    pub async fn batch(&self, token: &str, batch_id: &str) -> Value {
        let res = self
            .get(token, &format!("/v1/batches/{batch_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// The next `n` work items from the queue, each acknowledged.
    pub async fn take_items(&self, n: usize) -> Vec<WorkItem> {
        let mut guard = self.jobs.lock().await;
        if guard.is_none() {
            *guard = Some(
                self.deps
                    .queue
                    .consume(64)
                    .await
                    .expect("consume from the job queue"),
            );
        }
        let stream = guard.as_mut().unwrap();
        let mut items = Vec::new();
        while items.len() < n {
            let delivery = tokio::time::timeout(Duration::from_secs(15), stream.next())
                .await
                .unwrap_or_else(|_| panic!("job queue: only {} of {n} items arrived", items.len()))
                .expect("job stream ended")
                .expect("delivery");
            items.push(delivery.item);
            delivery.handle.ack().await.expect("ack");
        }
        items
    }

    pub async fn take_jobs(&self, n: usize) -> Vec<ResizeJob> {
        self.take_items(n)
            .await
            .into_iter()
            .map(|item| match item {
                WorkItem::Resize(job) => job,
                other => panic!("expected a resize job, got {other:?}"),
            })
            .collect()
    }

    /// Does a worker's job for real data: writes every rendition, then records the outcome.
    pub async fn finish(&self, job: &ResizeJob) -> RecordResult {
        let original = self
            .deps
            .objects
            .get(&job.source_key)
            .await
            .expect("original stored");
        let img = image::load_from_memory(&original).expect("original decodes");
        let mut renditions = Vec::new();
        for &size in &job.options.sizes {
            let scaled = img.thumbnail(size, size);
            let mut out = std::io::Cursor::new(Vec::new());
            scaled.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
            let bytes = out.into_inner();
            let key = keys::rendition_key(job.batch_id, job.photo_id, size, job.options.format);
            self.deps
                .objects
                .put(
                    &key,
                    bytes.clone().into(),
                    job.options.format.content_type(),
                )
                .await
                .unwrap();
            renditions.push(Rendition {
                size,
                width: scaled.width(),
                height: scaled.height(),
                bytes: bytes.len() as u64,
            });
        }
        self.deps
            .state
            .record_outcome(
                job.batch_id,
                job.photo_id,
                &PhotoOutcome::Done {
                    width: img.width(),
                    height: img.height(),
                    renditions,
                },
            )
            .await
            .unwrap()
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// A small real JPEG (a gradient), so the stand-in worker decodes what the API stored.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

/// Asserts the common error shape and returns the body.
pub async fn expect_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    let got = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "status for {code}: body {body}");
    assert_eq!(body["error"]["code"], code, "body {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "body {body}"
    );
    body
}

/// A queue whose publishes fail like a broker that went away; everything else passes
/// through. Lets a test check what happens to photos whose job is never confirmed.
pub struct RefusingQueue(pub Arc<dyn JobQueue>);

#[async_trait]
impl JobQueue for RefusingQueue {
    async fn publish(&self, _item: &WorkItem) -> Result<(), QueueError> {
        Err(QueueError::Unavailable(
            "broker connection lost (test)".into(),
        ))
    }
    async fn consume(&self, prefetch: u16) -> Result<Box<dyn JobStream>, QueueError> {
        self.0.consume(prefetch).await
    }
    async fn publish_event(&self, routing_key: &str, payload: &[u8]) -> Result<(), QueueError> {
        self.0.publish_event(routing_key, payload).await
    }
    async fn ping(&self) -> Result<(), QueueError> {
        self.0.ping().await
    }
}

/// The photo ids of a `202 {"photos": [...]}` answer, in order.
pub fn photo_ids(body: &Value) -> Vec<String> {
    body["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

pub fn empty_json() -> Value {
    json!({})
}

/// Runs every scenario against one backend: `api_suite!(Backend expression)`.
#[macro_export]
macro_rules! api_suite {
    ($backend:expr) => {
        $crate::api_suite!(@each $backend;
            operations_endpoints_answer,
            unknown_routes_are_json_404,
            sessions_issue_tokens_and_cookies,
            missing_or_unknown_credentials_are_401,
            sessions_expire_and_slide,
            api_keys_guard_session_creation,
            batch_options_are_validated,
            other_sessions_get_404,
            upload_queue_complete_and_stream_events,
            oversize_part_is_413_and_nothing_is_counted,
            idempotency_keys_make_upload_retries_safe,
            photo_limit_is_409_before_storing,
            uploads_after_close_are_409,
            non_multipart_is_415_and_empty_uploads_422,
            presigned_upload_then_complete,
            photos_are_paginated,
            rate_limit_answers_429_with_retry_after,
            delete_removes_objects_and_state,
            renditions_can_redirect,
            unconfirmed_jobs_are_recorded_failed_and_503,
            state_outage_is_503_and_readyz_names_it,
            object_store_outage_is_503_and_nothing_is_counted,
        );
    };
    (@each $backend:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                common::scenarios::$name(&$backend).await;
            }
        )*
    };
}

/// A Redis state store adapter pointed at a port nothing listens on.
pub async fn dead_redis() -> Arc<dyn StateStore> {
    let port = closed_port();
    let store = tirage_shared::adapters::redis::RedisStateStore::connect(
        &tirage_shared::adapters::redis::RedisSettings {
            url: format!("redis://127.0.0.1:{port}"),
            key_prefix: format!("tirage-test:{}:", Uuid::new_v4().simple()),
        },
    )
    .expect("the Redis adapter builds its pool without connecting");
    Arc::new(store)
}

/// An S3 object store adapter pointed at a port nothing listens on.
pub async fn dead_s3() -> Arc<dyn ObjectStore> {
    let port = closed_port();
    let store =
        tirage_shared::adapters::s3::S3ObjectStore::new(&tirage_shared::adapters::s3::S3Settings {
            endpoint: format!("http://127.0.0.1:{port}"),
            public_endpoint: None,
            region: "garage".into(),
            bucket: "tirage".into(),
            access_key_id: "GKdead".into(),
            secret_access_key: "dead".to_owned().into(),
            key_prefix: format!("tirage-test/{}/", Uuid::new_v4().simple()),
        });
    Arc::new(store)
}

/// A local port nothing listens on: bound, then released.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
