//! The production [`StateStore`] on Redis, a single server or a Redis Cluster
//! ([`connection`]). Every multi-key change is one Lua script ([`scripts`]) on the keys of
//! one slot, so it is atomic across API replicas and workers; every key carries an expiry
//! (batch keys expire at the batch's `expires_at`, sessions and rate windows after their
//! TTL). The key layout is in [`keys`]; value and reply parsing in [`codec`].

mod caps;
mod codec;
mod connection;
mod effects;
mod keys;
mod runs;
mod scripts;
mod sessions;
mod streams;
mod upkeep;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::Deserialize;
use uuid::Uuid;

use super::records::page_bounds;
use codec::{
    BATCH_FIELDS, batch_from, millis, page_reply, parse, photo_from, rate_decision, redis_error,
    slid_session, status_reply, to_json,
};
use connection::{Connection, Subscribers};
use keys::KeySpace;
use scripts::Scripts;
use tirage_core::model::{Batch, PhotoOutcome, PhotoRecord};
use tirage_ports::state_store::{
    Authorize, Authorized, CloseResult, PendingUpload, PhotoPage, ProgressFeed, RateDecision,
    RecordResult, Session, SessionQuota, StateError, StateStore,
};

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
    #[cfg(feature = "testing")]
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
            #[cfg(feature = "testing")]
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
    pub(crate) fn conn(&self) -> Connection {
        self.connection.clone()
    }

    /// The servers named in the settings: the one server, or the cluster's seeds.
    pub(crate) fn subscriber_clients(&self) -> &[redis::Client] {
        self.subscribers.clients()
    }

    /// The URLs of those servers.
    #[cfg(feature = "testing")]
    pub(crate) fn server_urls(&self) -> &[String] {
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

    async fn put_session(&self, session: &Session, ttl: Duration) -> Result<(), StateError> {
        self.put_session_json(session, ttl).await
    }

    async fn put_session_capped(
        &self,
        session: &Session,
        ttl: Duration,
        quota: SessionQuota<'_>,
    ) -> Result<bool, StateError> {
        self.store_session_capped(session, ttl, quota).await
    }

    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError> {
        // GETEX reads and slides the expiry in one atomic command.
        let json: Option<String> = redis::cmd("GETEX")
            .arg(self.keys.session(id))
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        json.map(|json| slid_session(&json, ttl)).transpose()
    }

    async fn create_batch(&self, batch: &Batch) -> Result<(), StateError> {
        self.index_batch(batch).await?;
        self.write_batch(batch).await
    }

    async fn create_batch_capped(&self, batch: &Batch, max_open: u32) -> Result<bool, StateError> {
        self.index_batch(batch).await?;
        self.store_batch_capped(batch, max_open).await
    }

    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.keys.batch_hash(batch_id))
            .arg(&BATCH_FIELDS)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        let fields: Option<Vec<String>> = fields.into_iter().collect();
        fields.map(|f| batch_from(&f)).transpose()
    }

    async fn add_photos(
        &self,
        batch_id: Uuid,
        photos: &[PhotoRecord],
        limit: u64,
    ) -> Result<Batch, StateError> {
        let mut invocation = self.scripts.add_photos(&self.keys.batch(batch_id));
        invocation.arg(limit).arg(Utc::now().timestamp_millis());
        for photo in photos {
            invocation.arg(photo.id.to_string()).arg(to_json(photo)?);
        }
        let reply: Vec<String> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        match status_reply(&reply)? {
            ("ok", _, Some(batch)) => {
                self.announce(batch_id).await;
                Ok(batch)
            }
            ("not_found", ..) => Err(StateError::NotFound),
            ("closed", ..) => Err(StateError::BatchClosed),
            ("too_many", ..) => Err(StateError::TooManyPhotos { limit }),
            (other, ..) => Err(StateError::Corrupt(format!("add_photos reply {other:?}"))),
        }
    }

    async fn close_batch(&self, batch_id: Uuid) -> Result<CloseResult, StateError> {
        let reply: Vec<String> = self
            .scripts
            .close_batch(&self.keys.batch_hash(batch_id))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        match status_reply(&reply)? {
            ("ok", completed_now, Some(batch)) => {
                self.announce(batch_id).await;
                Ok(CloseResult {
                    batch,
                    completed_now,
                })
            }
            ("not_found", ..) => Err(StateError::NotFound),
            (other, ..) => Err(StateError::Corrupt(format!("close reply {other:?}"))),
        }
    }

    async fn record_outcome(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        outcome: &PhotoOutcome,
    ) -> Result<RecordResult, StateError> {
        let counter = match outcome {
            PhotoOutcome::Done { .. } => "done",
            PhotoOutcome::Failed { .. } => "failed",
        };
        let reply: Vec<String> = self
            .scripts
            .record_outcome(&self.keys.batch(batch_id))
            .arg(photo_id.to_string())
            .arg(to_json(outcome)?)
            .arg(counter)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        match status_reply(&reply)? {
            ("recorded", completed_now, Some(batch)) => {
                self.announce(batch_id).await;
                Ok(RecordResult::Recorded {
                    batch,
                    completed_now,
                })
            }
            ("already", _, Some(batch)) => Ok(RecordResult::AlreadyRecorded { batch }),
            ("unknown_photo", _, Some(batch)) => Ok(RecordResult::UnknownPhoto { batch }),
            ("not_found", ..) => Err(StateError::NotFound),
            (other, ..) => Err(StateError::Corrupt(format!("record reply {other:?}"))),
        }
    }

    async fn get_photo(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PhotoRecord>, StateError> {
        let reply: Vec<String> = self
            .scripts
            .get_photo(&self.keys.batch(batch_id))
            .arg(photo_id.to_string())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        match reply.as_slice() {
            [record, _] if record.is_empty() => Ok(None),
            [record, outcome] => photo_from(record, outcome).map(Some),
            _ => Err(StateError::Corrupt("get_photo reply".into())),
        }
    }

    async fn runs_started(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        attempt: u32,
    ) -> Result<u32, StateError> {
        self.read_runs(batch_id, photo_id, attempt).await
    }

    async fn start_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        attempt: u32,
    ) -> Result<u32, StateError> {
        self.count_run(batch_id, photo_id, attempt).await
    }

    async fn list_photos(
        &self,
        batch_id: Uuid,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PhotoPage, StateError> {
        let (start, end) = page_bounds(cursor, limit)?;
        let reply: Vec<String> = self
            .scripts
            .list_photos(&self.keys.batch(batch_id))
            .arg(start)
            .arg(end.saturating_sub(1))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        let (len, photos) = page_reply(&reply)?;
        let end = end.min(len);
        Ok(PhotoPage {
            photos,
            next_cursor: (end < len).then(|| end.to_string()),
        })
    }

    async fn delete_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        let _: i64 = self
            .conn()
            .del(&self.keys.batch(batch_id).all())
            .await
            .map_err(redis_error)?;
        self.announce(batch_id).await;
        Ok(())
    }

    async fn put_pending_uploads(
        &self,
        batch_id: Uuid,
        uploads: &[PendingUpload],
        limit: u64,
    ) -> Result<(), StateError> {
        self.store_pending(batch_id, uploads, Some(limit)).await
    }

    async fn put_pending_upload(
        &self,
        batch_id: Uuid,
        upload: &PendingUpload,
    ) -> Result<(), StateError> {
        self.store_pending(batch_id, std::slice::from_ref(upload), None)
            .await
    }

    async fn take_pending_upload(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PendingUpload>, StateError> {
        let json: String = self
            .scripts
            .take_pending(&self.keys.batch(batch_id))
            .arg(photo_id.to_string())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        if json.is_empty() {
            return Ok(None);
        }
        let upload: PendingUpload = parse("pending upload", &json)?;
        let now: DateTime<Utc> = Utc::now();
        Ok((upload.expires_at > now).then_some(upload))
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError> {
        let (count, ttl): (u64, i64) = self
            .scripts
            .rate_limit(&self.keys.rate(key))
            .arg(millis(window))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(rate_decision(count, ttl, limit))
    }

    async fn watch_progress(&self) -> Result<ProgressFeed, StateError> {
        self.subscribe_progress().await
    }

    async fn open_stream(
        &self,
        session_id: &str,
        stream_id: Uuid,
        limit: u32,
        lease: Duration,
    ) -> Result<bool, StateError> {
        self.lease_stream(session_id, stream_id, limit, lease).await
    }

    async fn close_stream(&self, session_id: &str, stream_id: Uuid) -> Result<(), StateError> {
        self.end_stream(session_id, stream_id).await
    }

    async fn authorize(&self, request: &Authorize<'_>) -> Result<Option<Authorized>, StateError> {
        self.authorize_request(request).await
    }
}
