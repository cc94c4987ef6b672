//! The production wiring: Redis, RabbitMQ and S3 from the configuration.

use std::sync::Arc;

use serde::Deserialize;
use tirage_shared::adapters::amqp::AmqpSettings;
use tirage_shared::adapters::production;
use tirage_shared::adapters::redis::RedisSettings;
use tirage_shared::adapters::s3::S3Settings;

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

impl Worker {
    /// Builds the Redis, RabbitMQ and S3 adapters, then binds the HTTP port. None of the
    /// services has to be up yet: the consumer loop retries with backoff until the broker
    /// answers, and `/readyz` says what is missing meanwhile.
    pub async fn build(settings: Settings) -> Result<Worker, WorkerError> {
        settings.worker.validate()?;
        let adapters = production::connect(&settings.redis, &settings.amqp, &settings.s3)
            .await
            .map_err(|e| WorkerError::Connect {
                service: e.dependency,
                message: e.message,
            })?;
        let ports = Ports {
            state: Arc::new(adapters.state),
            objects: Arc::new(adapters.objects),
            queue: Arc::new(adapters.queue),
        };
        Worker::from_ports(settings.worker, ports).await
    }
}
