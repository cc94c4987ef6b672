//! What event streams need from Redis: progress announcements on one pub/sub channel
//! (`P progress`, payload: the batch id), and the per-session stream leases (`P streams:{session}`,
//! a sorted set of stream id → lease expiry in unix ms, `stream_lease.lua`).

use std::sync::LazyLock;
use std::time::Duration;

use futures::StreamExt;
use redis::Script;
use uuid::Uuid;

use super::RedisStateStore;
use super::codec::{millis, redis_error};
use tirage_ports::{ProgressFeed, StateError};

static STREAM_LEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/stream_lease.lua")));

/// A subscription that cannot be set up within this long counts as Redis being down.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisStateStore {
    fn progress_channel(&self) -> String {
        format!("{}progress", self.keys.prefix())
    }

    fn streams_key(&self, session_id: &str) -> String {
        format!("{}streams:{session_id}", self.keys.prefix())
    }

    /// Announces that `batch_id` changed. Called after the change is stored; a failure is
    /// only logged: the change itself succeeded, and watchers re-read on a slow safety
    /// poll, so a lost announcement delays an event, it never loses one.
    pub(super) async fn announce(&self, batch_id: Uuid) {
        let published: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(self.progress_channel())
            .arg(batch_id.to_string())
            .query_async(&mut self.conn())
            .await;
        if let Err(e) = published {
            tracing::debug!(%batch_id, error = %e, "progress announcement not published");
        }
    }

    /// Listens on the first server of the list that takes the subscription: in a cluster a
    /// PUBLISH reaches every node, so any one will do, and when it dies the feed ends and
    /// the caller subscribes again, on whichever answers then.
    pub(super) async fn subscribe_progress(&self) -> Result<ProgressFeed, StateError> {
        let channel = self.progress_channel();
        let mut last_error = StateError::Unavailable("no Redis server to subscribe on".into());
        for client in self.subscriber_clients() {
            let subscribe = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            let pubsub = match tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribe).await {
                Ok(Ok(pubsub)) => pubsub,
                Ok(Err(e)) => {
                    last_error = redis_error(e);
                    continue;
                }
                Err(_) => {
                    last_error = StateError::Unavailable("progress subscription timed out".into());
                    continue;
                }
            };
            // Ends when the connection does: the caller subscribes again.
            let feed = pubsub.into_on_message().filter_map(|msg| async move {
                let payload: String = msg.get_payload().ok()?;
                Uuid::parse_str(&payload).ok()
            });
            return Ok(Box::pin(feed));
        }
        Err(last_error)
    }

    pub(super) async fn lease_stream(
        &self,
        session_id: &str,
        stream_id: Uuid,
        limit: u32,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let opened: i64 = STREAM_LEASE
            .key(self.streams_key(session_id))
            .arg(stream_id.to_string())
            .arg(limit)
            .arg(millis(lease))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(opened == 1)
    }

    pub(super) async fn end_stream(
        &self,
        session_id: &str,
        stream_id: Uuid,
    ) -> Result<(), StateError> {
        let _: i64 = redis::cmd("ZREM")
            .arg(self.streams_key(session_id))
            .arg(stream_id.to_string())
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}
