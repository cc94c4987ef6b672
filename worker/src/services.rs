//! The `tirage-worker` binary's settings and production wiring: Redis, RabbitMQ and S3 from
//! the configuration, through the shared runtime room.

use serde::Deserialize;
use tirage_runtime::config;
use tirage_runtime::telemetry::LogSettings;
use tirage_runtime::{ServiceSettings, connect};

use crate::settings::PhotoLimits;
use crate::{Worker, WorkerError, WorkerSettings};

/// The whole configuration the worker binary reads; other processes' sections are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub worker: WorkerSettings,
    /// What the worker reads of `[limits]`, the section the API enforces on upload.
    pub limits: PhotoLimits,
    pub log: LogSettings,
    /// `[redis]`, `[amqp]` and `[s3]`.
    #[serde(flatten)]
    pub services: ServiceSettings,
}

impl Settings {
    /// Every configuration layer ([`tirage_runtime::config`]).
    pub fn load() -> Result<Settings, WorkerError> {
        Ok(config::load()?)
    }
}

impl Worker {
    /// Builds the Redis, RabbitMQ and S3 adapters, then binds the HTTP port. None of the
    /// services has to be up yet: the consumer loop retries with backoff until the broker
    /// answers, and `/readyz` says what is missing meanwhile.
    pub async fn build(settings: Settings) -> Result<Worker, WorkerError> {
        let worker = settings.worker.with_limits(settings.limits);
        worker.validate()?;
        let ports = connect(&settings.services)
            .await
            .map_err(|e| WorkerError::Connect {
                service: e.dependency,
                message: e.message,
            })?;
        Worker::from_ports(worker, ports).await
    }
}
