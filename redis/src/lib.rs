//! The production [`StateStore`] on Redis, a single server or a Redis Cluster
//! ([`connection`]). Every multi-key change is one Lua script ([`scripts`]) on the keys of
//! one slot, so it is atomic across API replicas and workers; every key carries an expiry
//! (batch keys expire at the batch's `expires_at`, sessions and rate windows after their
//! TTL). The key layout is in [`keys`]; value and reply parsing in [`codec`].

mod batches;
mod caps;
mod codec;
pub mod connection;
mod effects;
mod keys;
mod runs;
mod scripts;
mod sessions;
mod storage;
mod streams;
mod upkeep;

use async_trait::async_trait;
use serde::Deserialize;

use codec::{redis_error, to_json};
use connection::{Connection, Subscribers};
use keys::KeySpace;
use scripts::Scripts;
use tirage_core::model::Batch;
use tirage_ports::{Authorize, Authorized, Progress, ProgressFeed, StateError, StateStore};

fn default_prefix() -> String {
    "tirage:".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// `redis://host:port[/db]`: the one server, when `cluster_urls` is empty.
    pub url: String,
    /// Seed nodes of a Redis Cluster (`redis://host:port` each; a few are enough, the rest
    /// are discovered). Non-empty: the store runs on that cluster and `url` is not used.
    #[serde(default)]
    pub cluster_urls: Vec<String>,
    /// Prepended to every key, so deployments (and tests) can share one Redis.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
}

impl RedisSettings {
    /// The servers these settings name: the cluster's seeds, or the one server.
    pub fn server_urls(&self) -> Vec<&str> {
        if self.cluster_urls.is_empty() {
            vec![self.url.as_str()]
        } else {
            self.cluster_urls.iter().map(String::as_str).collect()
        }
    }
}

pub struct RedisStateStore {
    connection: Connection,
    /// For the progress subscription, which needs a connection of its own.
    subscribers: Subscribers,
    /// The URLs of the settings (the server, or the cluster's seeds), for test helpers.
    servers: Vec<String>,
    keys: KeySpace,
    scripts: Scripts,
}

impl RedisStateStore {
    /// Builds the client; the connection opens on first use and re-opens after failures, so
    /// this succeeds while Redis is down (check with [`StateStore::ping`]). Call it within a
    /// tokio runtime: the connection lives on that runtime.
    ///
    /// One multiplexed connection (per cluster node) rather than a pool: every call is one
    /// round trip, where a pooled connection costs a health-check round trip per checkout.
    pub fn connect(settings: &RedisSettings) -> Result<Self, StateError> {
        let keys = KeySpace::new(&settings.key_prefix).map_err(StateError::Unavailable)?;
        let (connection, subscribers) = connection::open(settings)?;
        Ok(RedisStateStore {
            connection,
            subscribers,
            servers: settings
                .server_urls()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            keys,
            scripts: Scripts::new(),
        })
    }

    pub fn key_prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// Sets `field` in the batch's effects hash; true when this call set it.
    /// A handle on the shared connection (cheap: a clone). The test helpers
    /// (`testing::redis`) inspect keys through it.
    pub fn conn(&self) -> Connection {
        self.connection.clone()
    }

    /// The servers named in the settings: the one server, or the cluster's seeds.
    pub fn subscriber_clients(&self) -> &[redis::Client] {
        self.subscribers.clients()
    }

    /// The URLs of those servers.
    pub fn server_urls(&self) -> &[String] {
        &self.servers
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), StateError> {
        let _: i64 = self
            .scripts
            .create_batch(&self.keys.batch(batch.id))
            .arg(to_json(batch)?)
            .arg(batch.expires_at.timestamp_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}

#[async_trait]
impl StateStore for RedisStateStore {
    async fn ping(&self) -> Result<(), StateError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn authorize(&self, request: &Authorize<'_>) -> Result<Option<Authorized>, StateError> {
        self.authorize_request(request).await
    }
}

#[async_trait]
impl Progress for RedisStateStore {
    async fn watch_progress(&self) -> Result<ProgressFeed, StateError> {
        self.subscribe_progress().await
    }
}
