//! The backend on the production adapters (Redis or a Redis Cluster, RabbitMQ, Garage) and
//! the `tirage-api` binary started on them with settings from the environment, as a
//! deployment starts it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tirage_api::{PortNames, Ports};
use tirage_ports::StateStore;
use tirage_redis::RedisSettings;
use tirage_testkit as testing;

use super::{Backend, TestDeps};

/// Real services; state on a single Redis or on the test Redis Cluster.
pub struct Services {
    redis_cluster: bool,
}

impl Services {
    pub fn single_redis() -> Self {
        Services {
            redis_cluster: false,
        }
    }

    pub fn redis_cluster() -> Self {
        Services {
            redis_cluster: true,
        }
    }

    pub fn redis_settings(&self) -> RedisSettings {
        if self.redis_cluster {
            testing::redis_cluster_settings()
        } else {
            testing::redis_settings()
        }
    }
}

#[async_trait]
impl Backend for Services {
    async fn ports(&self) -> TestDeps {
        let redis = self.redis_settings();
        let (state, queue, objects) = tokio::join!(
            testing::redis_state_on(&redis),
            testing::amqp_queue(),
            testing::s3_store()
        );
        TestDeps {
            ports: Ports {
                state: Arc::new(state),
                objects: Arc::new(objects),
                queue: Arc::new(queue),
                names: PortNames::production(),
            },
            guard: Box::new(testing::RedisCleanup::of(&redis)),
        }
    }

    async fn dead_state(&self) -> Arc<dyn StateStore> {
        super::dead_redis().await
    }

    /// What a browser does: PUT the bytes to the presigned URL with the given headers.
    async fn upload_ticket(&self, _ports: &Ports, ticket: &Value, body: Vec<u8>) {
        assert_eq!(ticket["method"], "PUT");
        let mut req = reqwest::Client::new().put(ticket["url"].as_str().unwrap());
        // reqwest states the body's length itself; the store checks it against the ticket's.
        for (name, value) in ticket["headers"].as_object().unwrap() {
            if !name.eq_ignore_ascii_case("content-length") {
                req = req.header(name.as_str(), value.as_str().unwrap());
            }
        }
        let res = req
            .body(body)
            .send()
            .await
            .expect("S3 (Garage) presigned PUT");
        assert!(
            res.status().is_success(),
            "presigned PUT answered {}: {:?}",
            res.status(),
            res.text().await
        );
    }
}

/// A `tirage-api` process configured only through `TIRAGE__*` variables, listening on
/// `base` once [`ApiProcess::start`] returns.
pub struct ApiProcess {
    pub child: tokio::process::Child,
    pub base: String,
    _redis_keys: testing::RedisCleanup,
}

impl ApiProcess {
    /// Starts the binary on the real services (state as `redis` says) and waits until
    /// `/readyz` answers 200.
    pub async fn start(redis: &RedisSettings) -> ApiProcess {
        let amqp = testing::amqp_settings();
        let s3 = testing::s3_settings();
        let port = super::closed_port();
        let secret = |s: &SecretString| s.expose_secret().to_owned();
        let mut env = vec![
            ("TIRAGE__API__PORT", port.to_string()),
            ("TIRAGE__API__SHUTDOWN_TIMEOUT_SECS", "10".into()),
            ("TIRAGE__API__EVENTS_MAX_SECS", "2".into()),
            ("TIRAGE__REDIS__URL", redis.url.clone()),
            ("TIRAGE__REDIS__KEY_PREFIX", redis.key_prefix.clone()),
            ("TIRAGE__AMQP__URL", secret(&amqp.url)),
            ("TIRAGE__AMQP__QUEUE_PREFIX", amqp.queue_prefix.clone()),
            (
                "TIRAGE__AMQP__EVENTS_EXCHANGE",
                amqp.events_exchange.clone(),
            ),
            (
                "TIRAGE__AMQP__QUEUE_EXPIRES_MS",
                testing::TEST_QUEUE_EXPIRES_MS.to_string(),
            ),
            ("TIRAGE__S3__ENDPOINT", s3.endpoint.clone()),
            ("TIRAGE__S3__REGION", s3.region.clone()),
            ("TIRAGE__S3__BUCKET", s3.bucket.clone()),
            ("TIRAGE__S3__ACCESS_KEY_ID", s3.access_key_id.clone()),
            (
                "TIRAGE__S3__SECRET_ACCESS_KEY",
                secret(&s3.secret_access_key),
            ),
            ("TIRAGE__S3__KEY_PREFIX", s3.key_prefix.clone()),
            ("TIRAGE__LOG__LEVEL", "warn".into()),
        ];
        if !redis.cluster_urls.is_empty() {
            // As an operator writes it: one variable, the seeds separated by commas.
            env.push(("TIRAGE__REDIS__CLUSTER_URLS", redis.cluster_urls.join(",")));
        }
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tirage-api"))
            .envs(env)
            .kill_on_drop(true)
            .spawn()
            .expect("start tirage-api");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(res) = client.get(format!("{base}/readyz")).send().await {
                assert_eq!(res.status(), 200, "readyz: {:?}", res.text().await);
                return ApiProcess {
                    child,
                    base,
                    _redis_keys: testing::RedisCleanup::of(redis),
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("tirage-api did not listen on port {port}");
    }
}
