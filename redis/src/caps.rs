//! The caps one client may not pass. Each is counted in one script on the counting key's
//! own slot, then the thing counted is written in its own slot, in the order that errs on
//! the safe side when a step fails between them:
//! - sessions per client address: counted (`count_session.lua`), then stored; a session
//!   counted but never stored only uses up one of the address's sessions until it ages out;
//! - open batches per session: the batch is created first, then held in the owner's set
//!   (`hold_open_batch.lua`) or, over the cap, deleted again. A member of the set is thus
//!   either a batch that exists or one that is gone for good, never one about to be made,
//!   so a member found gone or no longer open may safely leave the set;
//! - pending uploads against the photo limit: one script on the batch's slot
//!   (`put_pending.lua`).

use std::time::Duration;

use chrono::Utc;
use futures::future::try_join_all;
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStateStore;
use super::codec::{millis, redis_error, to_json};
use tirage_core::model::Batch;
use tirage_ports::{PendingUpload, Session, SessionQuota, StateError};

impl RedisStateStore {
    pub(super) async fn store_session_capped(
        &self,
        session: &Session,
        ttl: Duration,
        quota: SessionQuota<'_>,
    ) -> Result<bool, StateError> {
        let counted: i64 = self
            .scripts
            .count_session(&self.keys.address_sessions(quota.owner))
            .arg(millis(ttl))
            .arg(Utc::now().timestamp_millis())
            .arg(quota.max.as_script_arg())
            .arg(&session.id)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        if counted != 1 {
            return Ok(false);
        }
        self.put_session_json(session, ttl).await?;
        Ok(true)
    }

    pub(super) async fn store_batch_capped(
        &self,
        batch: &Batch,
        max_open: u32,
    ) -> Result<bool, StateError> {
        self.write_batch(batch).await?;
        let owner_batches = self.keys.owner_batches(&batch.owner);
        let members: Vec<String> = self
            .conn()
            .zrange(&owner_batches, 0, -1)
            .await
            .map_err(redis_error)?;
        let others = members
            .iter()
            .filter(|m| **m != batch.id.to_string())
            .map(|m| async move { Ok::<_, StateError>((m, self.is_open(m).await?)) });
        let closed: Vec<&String> = try_join_all(others)
            .await?
            .into_iter()
            .filter_map(|(m, open)| (!open).then_some(m))
            .collect();
        let held: i64 = self
            .scripts
            .hold_open_batch(&owner_batches)
            .arg(batch.id.to_string())
            .arg(batch.expires_at.timestamp_millis())
            .arg(max_open)
            .arg(Utc::now().timestamp_millis())
            .arg(closed)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        if held == 1 {
            return Ok(true);
        }
        let _: i64 = self
            .conn()
            .del(&self.keys.batch(batch.id).all())
            .await
            .map_err(redis_error)?;
        let _: i64 = self
            .conn()
            .zrem(self.keys.batch_index(), batch.id.to_string())
            .await
            .map_err(redis_error)?;
        Ok(false)
    }

    /// Whether the set member `id` names a batch that exists and is open.
    async fn is_open(&self, id: &str) -> Result<bool, StateError> {
        let Ok(id) = Uuid::parse_str(id) else {
            return Ok(false);
        };
        let state: Option<String> = self
            .conn()
            .hget(self.keys.batch_hash(id), "state")
            .await
            .map_err(redis_error)?;
        Ok(state.as_deref() == Some("open"))
    }

    /// `limit`: `None` counts against nothing (a ticket handed back).
    pub(super) async fn store_pending(
        &self,
        batch_id: Uuid,
        uploads: &[PendingUpload],
        limit: Option<u64>,
    ) -> Result<(), StateError> {
        let mut invocation = self.scripts.put_pending(&self.keys.batch(batch_id));
        invocation
            .arg(limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX)))
            .arg(Utc::now().timestamp_millis());
        for upload in uploads {
            invocation
                .arg(upload.photo_id.to_string())
                .arg(upload.expires_at.timestamp_millis())
                .arg(to_json(upload)?);
        }
        let reply: String = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        match reply.as_str() {
            "ok" => Ok(()),
            "not_found" => Err(StateError::NotFound),
            "closed" => Err(StateError::BatchClosed),
            "too_many" => Err(StateError::TooManyPhotos {
                limit: limit.unwrap_or(u64::MAX),
            }),
            other => Err(StateError::Corrupt(format!("put_pending reply {other:?}"))),
        }
    }
}
