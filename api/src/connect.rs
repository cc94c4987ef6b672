//! Building the production dependencies (Redis, RabbitMQ, S3) from settings.

use std::sync::Arc;

use tirage_shared::adapters::production;
use tirage_shared::adapters::redis::RedisStateStore;
use tirage_shared::adapters::s3::S3ObjectStore;
use tirage_shared::ports::{JobQueue, StateStore};

use crate::settings::Settings;
use crate::startup::{Dependencies, DependencyNames, StartupError, Wiring};

/// The production wiring: each HTTP worker gets a Redis pool and an S3 client of its own,
/// built on its own thread, and all share one RabbitMQ connection (lapin runs its own I/O
/// threads).
///
/// Why per worker: network clients run each pooled connection on the runtime that opened
/// it, and actix-web gives every worker its own runtime and stops them one by one on
/// shutdown. A connection shared across workers would die with the worker that opened it
/// while another still uses it; one owned by its worker only ever serves that worker, and
/// no call has to hop to another thread.
///
/// None of the services has to be up ([`production::connect`]): a dependency that is down
/// shows in `/readyz`, requests that need it answer 503, and its adapter reconnects when it
/// is back.
pub async fn production(settings: &Settings) -> Result<Wiring, StartupError> {
    let checked = production::connect(&settings.redis, &settings.amqp, &settings.s3)
        .await
        .map_err(|e| StartupError::Connect {
            dependency: e.dependency,
            message: e.message,
        })?;
    let queue: Arc<dyn JobQueue> = Arc::new(checked.queue);
    // The settings were just accepted, so building another pool from them cannot fail; if it
    // ever did, sharing this one is still correct.
    let shared_state: Arc<dyn StateStore> = Arc::new(checked.state);
    let (redis, s3) = (settings.redis.clone(), settings.s3.clone());
    Ok(Wiring::PerWorker(Arc::new(move || Dependencies {
        state: RedisStateStore::connect(&redis)
            .map(|store| Arc::new(store) as Arc<dyn StateStore>)
            .unwrap_or_else(|_| shared_state.clone()),
        objects: Arc::new(S3ObjectStore::new(&s3)),
        queue: queue.clone(),
        names: DependencyNames::production(),
    })))
}
