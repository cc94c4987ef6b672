//! Building the production dependencies (Redis, RabbitMQ, S3) from settings.

use std::sync::Arc;

use tirage_shared::adapters::amqp::AmqpQueue;
use tirage_shared::adapters::redis::RedisStateStore;
use tirage_shared::adapters::s3::S3ObjectStore;

use crate::settings::Settings;
use crate::startup::{Dependencies, DependencyNames, StartupError};

/// Connects the three adapters. Redis and S3 connect lazily (their pools reconnect after an
/// outage); RabbitMQ declares its topology here, so a broker that is down fails the start and
/// the supervisor restarts the process.
pub async fn production(settings: &Settings) -> Result<Dependencies, StartupError> {
    let state = RedisStateStore::connect(&settings.redis).map_err(|e| StartupError::Connect {
        dependency: "redis",
        message: e.to_string(),
    })?;
    let objects =
        S3ObjectStore::connect(&settings.s3)
            .await
            .map_err(|e| StartupError::Connect {
                dependency: "s3",
                message: e.to_string(),
            })?;
    let queue = AmqpQueue::connect(&settings.amqp)
        .await
        .map_err(|e| StartupError::Connect {
            dependency: "rabbitmq",
            message: e.to_string(),
        })?;
    Ok(Dependencies {
        state: Arc::new(state),
        objects: Arc::new(objects),
        queue: Arc::new(queue),
        names: DependencyNames::production(),
    })
}
