//! Building the production dependencies (Redis, RabbitMQ, S3) from settings.

use std::sync::Arc;

use tokio::runtime::Handle;

use tirage_shared::adapters::Pinned;
use tirage_shared::adapters::amqp::AmqpQueue;
use tirage_shared::adapters::redis::RedisStateStore;
use tirage_shared::adapters::s3::S3ObjectStore;

use crate::settings::Settings;
use crate::startup::{Dependencies, DependencyNames, StartupError};

/// Connects the three adapters. Redis and S3 connect lazily (their pools reconnect after an
/// outage); RabbitMQ declares its topology here, so a broker that is down fails the start and
/// the supervisor restarts the process.
///
/// Redis and S3 are pinned to the runtime calling this (the process' main one), so that their
/// pooled connections do not die with whichever actix worker opened them (see
/// [`Pinned`]); lapin runs its own I/O threads already.
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
        state: Arc::new(Pinned::new(Arc::new(state), Handle::current())),
        objects: Arc::new(Pinned::new(Arc::new(objects), Handle::current())),
        queue: Arc::new(queue),
        names: DependencyNames::production(),
    })
}
