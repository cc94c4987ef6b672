//! The three ports a process runs on, and the one place they are wired to production
//! services ([`connect`]). The embedded adapters are put together by `tirage standalone`
//! and the tests directly.

use std::sync::Arc;

use tirage_ports::{JobQueue, ObjectStore, StateStore};

/// The ports, ready to use.
#[derive(Clone)]
pub struct Ports {
    pub state: Arc<dyn StateStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub queue: Arc<dyn JobQueue>,
    /// How health checks (`/readyz`) name each one.
    pub names: PortNames,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortNames {
    pub state: String,
    pub objects: String,
    pub queue: String,
}

impl PortNames {
    /// The production names, which are what operators look for in `/readyz`.
    pub fn production() -> Self {
        PortNames {
            state: "redis".into(),
            objects: "s3".into(),
            queue: "rabbitmq".into(),
        }
    }

    pub fn embedded() -> Self {
        PortNames {
            state: "memory_state".into(),
            objects: "fs_objects".into(),
            queue: "inprocess_queue".into(),
        }
    }
}

#[cfg(all(feature = "redis", feature = "amqp", feature = "s3"))]
pub use production::{ConnectError, ServiceSettings, connect};

#[cfg(all(feature = "redis", feature = "amqp", feature = "s3"))]
mod production {
    use std::sync::Arc;
    use std::time::Duration;

    use serde::Deserialize;

    use super::{PortNames, Ports};
    use tirage_amqp::{AmqpQueue, AmqpSettings};
    use tirage_ports::JobQueue;
    use tirage_ports::object_store::ObjectStoreError;
    use tirage_redis::{RedisSettings, RedisStateStore};
    use tirage_s3::{S3ObjectStore, S3Settings};

    /// How long the start waits for a first broker connection before going on without it.
    const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(5);

    /// The `[redis]`, `[amqp]` and `[s3]` sections, shared by the API and the worker.
    #[derive(Debug, Clone, Deserialize)]
    pub struct ServiceSettings {
        pub redis: RedisSettings,
        pub amqp: AmqpSettings,
        pub s3: S3Settings,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot set up {dependency}: {message}")]
    pub struct ConnectError {
        /// `redis`, `rabbitmq` or `s3`.
        pub dependency: &'static str,
        pub message: String,
    }

    /// Builds the Redis, RabbitMQ and S3 adapters, then tries the broker once so that a
    /// healthy start logs no warning and its first publish does not pay for the
    /// connection.
    ///
    /// Nothing here waits for a service. Redis and S3 connect on first use and reconnect
    /// after an outage; the queue connects lazily too ([`AmqpQueue::lazy`]). So a process
    /// starts while a dependency is down, reports it in `/readyz`, answers what needs it
    /// with 503 (the worker retries consuming), and recovers by itself when it returns.
    /// Only settings that cannot work (a malformed URL) fail the start.
    pub async fn connect(services: &ServiceSettings) -> Result<Ports, ConnectError> {
        let state = redis_store(services)?;
        let queue = AmqpQueue::lazy(&services.amqp);
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
        let objects = Arc::new(S3ObjectStore::new(&services.s3));
        configure_bucket_later(objects.clone(), &services.s3);
        Ok(Ports {
            state: Arc::new(state),
            objects,
            queue: Arc::new(queue),
            names: PortNames::production(),
        })
    }

    impl Ports {
        /// The same ports with Redis and S3 clients of the calling thread's own, sharing
        /// the queue (lapin runs its own I/O threads). Network clients run each connection
        /// on the runtime that opened it: a server with one runtime per thread (actix-web)
        /// gives each its own, so no connection outlives the runtime it belongs to and no
        /// call hops threads. The settings were accepted by [`connect`] already, so a
        /// failure here keeps the shared client, which is still correct.
        pub fn with_own_clients(&self, services: &ServiceSettings) -> Ports {
            let state = match redis_store(services) {
                Ok(store) => Arc::new(store) as Arc<dyn tirage_ports::StateStore>,
                Err(_) => self.state.clone(),
            };
            Ports {
                state,
                objects: Arc::new(S3ObjectStore::new(&services.s3)),
                queue: self.queue.clone(),
                names: self.names.clone(),
            }
        }
    }

    /// Sets the bucket's lifecycle and CORS rules in the background: S3 may be down at
    /// start, and a process must start anyway. Every process does it; the rules are the
    /// same, so the writes are idempotent.
    fn configure_bucket_later(objects: Arc<S3ObjectStore>, s3: &S3Settings) {
        let days = s3.expire_after_days;
        if days > 0 {
            let objects = objects.clone();
            tokio::spawn(until_set("bucket lifecycle", move || {
                let objects = objects.clone();
                async move { objects.ensure_lifecycle(days).await }
            }));
        }
        let origins = s3.cors_origins.clone();
        if !origins.is_empty() {
            tokio::spawn(until_set("bucket CORS rule", move || {
                let (objects, origins) = (objects.clone(), origins.clone());
                async move { objects.ensure_cors(&origins).await }
            }));
        }
    }

    /// Runs `set` until it succeeds, backing off while S3 is unreachable; gives up (with a
    /// warning) on a refusal that retrying cannot change.
    async fn until_set<F, Fut>(what: &'static str, set: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), ObjectStoreError>>,
    {
        let mut wait = Duration::from_secs(1);
        loop {
            match set().await {
                Ok(()) => {
                    tracing::info!("{what} set");
                    return;
                }
                Err(e) if e.is_transient() => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(60));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot set the {what}; set it on the bucket by hand (docs/DEPLOY.md)");
                    return;
                }
            }
        }
    }

    fn redis_store(services: &ServiceSettings) -> Result<RedisStateStore, ConnectError> {
        RedisStateStore::connect(&services.redis).map_err(|e| ConnectError {
            dependency: "redis",
            message: e.to_string(),
        })
    }
}

#[cfg(all(test, feature = "amqp"))]
mod tests {
    use tirage_amqp::{AmqpSettings, QueueType};

    #[test]
    fn the_defaults_declare_classic_queues_on_one_url() {
        use crate::config::{Layers, load_section_from};
        let s: AmqpSettings = load_section_from(&Layers::defaults_only(), "amqp").unwrap();
        assert_eq!(s.queue_type, QueueType::Classic);
        assert!(s.urls.is_empty());
    }
}
