//! The production wiring: Redis, RabbitMQ and S3 from the configuration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tirage_shared::adapters::amqp::{AmqpQueue, AmqpSettings};
use tirage_shared::adapters::redis::{RedisSettings, RedisStateStore};
use tirage_shared::adapters::s3::{S3ObjectStore, S3Settings};
use tracing::warn;

use crate::settings::backoff;
use crate::{Ports, Worker, WorkerError, WorkerSettings};

/// The whole configuration the worker binary reads; other processes' sections are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub worker: WorkerSettings,
    pub redis: RedisSettings,
    pub amqp: AmqpSettings,
    pub s3: S3Settings,
    #[serde(default)]
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// EnvFilter directive; `RUST_LOG` wins when set.
    pub level: String,
    /// `json` or `pretty`.
    pub format: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: "json".into(),
        }
    }
}

impl Settings {
    /// `config/default.toml` (or `TIRAGE_CONFIG`), then `TIRAGE__*` variables.
    pub fn load() -> Result<Settings, WorkerError> {
        Ok(crate::configuration::load()?)
    }
}

/// How long the worker keeps trying to reach the broker at startup before giving up (and
/// letting its supervisor restart it).
const STARTUP_PATIENCE: Duration = Duration::from_secs(60);

impl Worker {
    /// Connects to Redis, RabbitMQ and S3, then binds the HTTP port.
    pub async fn build(settings: Settings) -> Result<Worker, WorkerError> {
        settings.worker.validate()?;
        let state =
            RedisStateStore::connect(&settings.redis).map_err(|e| WorkerError::Connect {
                service: "redis",
                message: e.to_string(),
            })?;
        let objects =
            S3ObjectStore::connect(&settings.s3)
                .await
                .map_err(|e| WorkerError::Connect {
                    service: "s3",
                    message: e.to_string(),
                })?;
        let started = Instant::now();
        let mut attempt = 0;
        let queue = loop {
            attempt += 1;
            match AmqpQueue::connect(&settings.amqp).await {
                Ok(q) => break q,
                Err(e) if started.elapsed() < STARTUP_PATIENCE => {
                    let delay = backoff(
                        attempt,
                        Duration::from_millis(settings.worker.reconnect_base_ms),
                        Duration::from_millis(settings.worker.reconnect_cap_ms),
                    );
                    warn!(error = %e, "RabbitMQ not reachable yet; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    return Err(WorkerError::Connect {
                        service: "rabbitmq",
                        message: e.to_string(),
                    });
                }
            }
        };
        let ports = Ports {
            state: Arc::new(state),
            objects: Arc::new(objects),
            queue: Arc::new(queue),
        };
        Worker::from_ports(settings.worker, ports).await
    }
}
