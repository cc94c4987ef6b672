//! The API test harness: an app on port 0 over dependencies a [`Backend`] builds, the
//! request helpers (`client.rs`), a stand-in for the worker (`worker.rs`), and the
//! scenarios (`scenarios/`, one file per resource), written once and run by every backend
//! (`embedded.rs`, `cluster.rs`).

#![allow(dead_code)]

pub mod client;
pub mod embedded;
pub mod scenarios;
pub mod services;
pub mod worker;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use async_trait::async_trait;
use serde_json::Value;
use tirage_api::{Application, Ports, Settings};
use tirage_ports::dead_letters::Select;
use tirage_ports::{
    DeadLetter, DeadLetters, JobQueue, JobStream, Lane, ObjectStore, QueueError, StateStore,
    TraceContext, WorkItem,
};
use tirage_runtime::config::Layers;
use tokio::sync::Mutex;
use uuid::Uuid;

pub use client::{Sent, expect_error, jpeg, json_of, photo_ids};

/// Fresh, isolated dependencies for one test, plus whatever must live as long as they do
/// (a temp directory, a queue to delete).
pub struct TestDeps {
    pub ports: Ports,
    pub guard: Box<dyn Any + Send + Sync>,
}

/// How a suite builds its dependencies.
#[async_trait]
pub trait Backend: Sync {
    /// Ports no other test shares (own key prefix, object prefix, queue).
    async fn ports(&self) -> TestDeps;
    /// A state store adapter pointed at a closed port.
    async fn dead_state(&self) -> Arc<dyn StateStore>;
    /// Does what a browser does with an upload ticket from `POST /uploads`.
    async fn upload_ticket(&self, ports: &Ports, ticket: &Value, body: Vec<u8>);
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub ports: Ports,
    pub settings: Settings,
    handle: ServerHandle,
    jobs: Mutex<HashMap<Lane, Box<dyn JobStream>>>,
    _guard: Box<dyn Any + Send + Sync>,
}

pub fn test_settings() -> Settings {
    let mut settings =
        Settings::load_from(&Layers::defaults_only()).expect("config/default.toml loads");
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
        let TestDeps { ports, guard } = backend.ports().await;
        Self::on(ports, guard, tweak)
    }

    pub fn on(
        ports: Ports,
        guard: Box<dyn Any + Send + Sync>,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestApp {
        let mut settings = test_settings();
        tweak(&mut settings);
        let app = Application::build_with(settings.clone(), ports.clone()).expect("app builds");
        Self::running(app, settings, ports, guard)
    }

    /// Runs an application built elsewhere (`Application::build`); `ports` reach the same
    /// stores and queue, for the test's own checks.
    pub fn running(
        app: Application,
        settings: Settings,
        ports: Ports,
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
            ports,
            settings,
            handle,
            jobs: Mutex::new(HashMap::new()),
            _guard: guard,
        }
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// A queue whose publishes fail like a broker that went away; everything else passes
/// through. Lets a test check what happens to photos whose job is never confirmed.
pub struct RefusingQueue(pub Arc<dyn JobQueue>);

#[async_trait]
impl JobQueue for RefusingQueue {
    async fn publish(&self, _item: &WorkItem, _trace: &TraceContext) -> Result<(), QueueError> {
        Err(QueueError::Unavailable(
            "broker connection lost (test)".into(),
        ))
    }
    async fn consume(&self, lane: Lane, prefetch: u16) -> Result<Box<dyn JobStream>, QueueError> {
        self.0.consume(lane, prefetch).await
    }
    async fn waiting(&self, lane: Lane) -> Result<u64, QueueError> {
        self.0.waiting(lane).await
    }
    async fn publish_event(&self, routing_key: &str, payload: &[u8]) -> Result<(), QueueError> {
        self.0.publish_event(routing_key, payload).await
    }
    async fn ping(&self) -> Result<(), QueueError> {
        self.0.ping().await
    }
}

#[async_trait]
impl DeadLetters for RefusingQueue {
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        self.0.dead_letters(limit).await
    }
    async fn replay_dead_letters(
        &self,
        limit: usize,
        select: Select<'_>,
    ) -> Result<Vec<WorkItem>, QueueError> {
        self.0.replay_dead_letters(limit, select).await
    }
}

/// Runs every scenario against one backend: `api_suite!(Backend expression)`. Each test
/// keeps the scenario's name; the scenario lives in `scenarios/<resource>.rs`.
#[macro_export]
macro_rules! api_suite {
    ($backend:expr) => {
        $crate::api_suite!(@each $backend;
            operations::operations_endpoints_answer,
            operations::unknown_routes_are_json_404,
            operations::wrong_methods_are_405_with_allow,
            sessions::sessions_issue_tokens_and_cookies,
            sessions::missing_or_unknown_credentials_are_401,
            sessions::sessions_expire_and_slide,
            sessions::api_keys_guard_session_creation,
            sessions::rate_limit_answers_429_with_retry_after,
            batches::batch_options_are_validated,
            batches::other_sessions_get_404,
            batches::uploads_after_close_are_409,
            batches::delete_removes_objects_and_state,
            events::upload_queue_complete_and_stream_events,
            streams::progress_reaches_streams_without_polling,
            streams::event_streams_are_capped_per_session,
            streams::event_streams_are_capped_per_address,
            streams::uploads_past_the_replica_cap_are_503_with_retry_after,
            uploads_multipart::oversize_part_is_413_and_nothing_is_counted,
            uploads_multipart::idempotency_keys_make_upload_retries_safe,
            uploads_multipart::photo_limit_is_409_before_storing,
            uploads_multipart::non_multipart_is_415_and_empty_uploads_422,
            uploads_presigned::presigned_upload_then_complete,
            caps::sessions_are_capped_per_client_address,
            caps::session_creation_rate_ignores_forwarded_headers,
            caps::unknown_tokens_are_counted_per_address,
            caps::open_batches_are_capped_per_session,
            caps::batch_creations_are_capped_per_session_per_hour,
            caps::pending_uploads_count_against_the_photo_limit,
            caps::upload_larger_than_announced_is_refused_at_complete,
            photos::photos_are_paginated,
            photos::renditions_can_redirect,
            photos::renditions_are_served_like_static_files,
            photos::signed_rendition_urls_need_no_session_and_are_public,
            photos::rendition_urls_are_unsigned_unless_configured,
            archive::archive_holds_every_done_rendition,
            archive::archive_is_cut_when_a_rendition_vanishes,
            archive::archives_are_capped_per_session,
            quotas::stored_bytes_are_capped_per_session_and_address,
            quotas::multipart_parts_are_charged_by_what_they_store,
            quotas::an_archive_costs_a_request_per_file,
            dependencies::unconfirmed_jobs_are_recorded_failed_and_503,
            dependencies::a_retry_whose_publish_fails_leaves_a_queued_photo_queued,
            dependencies::state_outage_is_503_and_readyz_names_it,
            dependencies::object_store_outage_is_503_and_nothing_is_counted,
        );
    };
    (@each $backend:expr; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                common::scenarios::$module::$name(&$backend).await;
            }
        )*
    };
}

/// A Redis state store adapter pointed at a port nothing listens on.
pub async fn dead_redis() -> Arc<dyn StateStore> {
    let port = closed_port();
    let store = tirage_redis::RedisStateStore::connect(&tirage_redis::RedisSettings {
        url: format!("redis://127.0.0.1:{port}"),
        cluster_urls: Vec::new(),
        key_prefix: format!("tirage-test:{}:", Uuid::new_v4().simple()),
    })
    .expect("the Redis adapter builds its pool without connecting");
    Arc::new(store)
}

/// An S3 object store adapter pointed at a port nothing listens on.
pub async fn dead_s3() -> Arc<dyn ObjectStore> {
    let port = closed_port();
    let store = tirage_s3::S3ObjectStore::new(&tirage_s3::S3Settings {
        endpoint: format!("http://127.0.0.1:{port}"),
        public_endpoint: None,
        region: "garage".into(),
        bucket: "tirage".into(),
        access_key_id: "GKdead".into(),
        secret_access_key: "dead".to_owned().into(),
        key_prefix: format!("tirage-test/{}/", Uuid::new_v4().simple()),
        expire_after_days: 0,
        cors_origins: Vec::new(),
    });
    Arc::new(store)
}

/// A local port nothing listens on: bound, then released.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
