//! The production adapters (Redis, RabbitMQ, S3) built from their settings: the one place
//! the API and the worker wire them up.
//!
//! Nothing here waits for a service. Redis and S3 connect on first use and their pools
//! reconnect after an outage; the queue connects lazily too ([`AmqpQueue::lazy`]). So a
//! process starts while a dependency is down, reports it in `/readyz`, answers what needs it
//! with 503 (the worker retries consuming), and recovers by itself when it returns. Only
//! settings that cannot work (a malformed URL) fail the start.

use std::time::Duration;

use crate::adapters::amqp::{AmqpQueue, AmqpSettings};
use crate::adapters::redis::{RedisSettings, RedisStateStore};
use crate::adapters::s3::{S3ObjectStore, S3Settings};
use crate::ports::JobQueue;

/// How long the start waits for a first broker connection before going on without it.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("cannot set up {dependency}: {message}")]
pub struct SetupError {
    /// `redis`, `rabbitmq` or `s3`.
    pub dependency: &'static str,
    pub message: String,
}

pub struct ProductionAdapters {
    pub state: RedisStateStore,
    pub queue: AmqpQueue,
    pub objects: S3ObjectStore,
}

/// Builds the three adapters, then tries the broker once so that a healthy start logs no
/// warning and its first publish does not pay for the connection.
pub async fn connect(
    redis: &RedisSettings,
    amqp: &AmqpSettings,
    s3: &S3Settings,
) -> Result<ProductionAdapters, SetupError> {
    let state = RedisStateStore::connect(redis).map_err(|e| SetupError {
        dependency: "redis",
        message: e.to_string(),
    })?;
    let objects = S3ObjectStore::new(s3);
    let queue = AmqpQueue::lazy(amqp);
    match tokio::time::timeout(FIRST_CONNECT_WAIT, queue.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(
            error = %e,
            "RabbitMQ is not reachable; starting without it and connecting when it is back"
        ),
        Err(_) => tracing::warn!(
            "RabbitMQ did not answer in time; starting without it and connecting when it is back"
        ),
    }
    Ok(ProductionAdapters {
        state,
        queue,
        objects,
    })
}
