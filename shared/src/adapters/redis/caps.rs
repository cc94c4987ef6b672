//! The caps one client may not pass, each counted and enforced in one script: sessions per
//! client address (`create_session.lua`), open batches per session (`create_batch.lua` with
//! the owner's set) and pending uploads against the photo limit (`put_pending.lua`).

use std::time::Duration;

use chrono::Utc;
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStateStore;
use super::codec::{millis, redis_error, to_json};
use crate::model::Batch;
use crate::ports::state_store::{PendingUpload, Session, SessionQuota, StateError};

impl RedisStateStore {
    pub(super) async fn store_session_capped(
        &self,
        session: &Session,
        ttl: Duration,
        quota: SessionQuota<'_>,
    ) -> Result<bool, StateError> {
        let stored: i64 = self
            .scripts
            .create_session(
                &self.keys.session(&session.id),
                &self.keys.address_sessions(quota.owner),
            )
            .arg(to_json(session)?)
            .arg(millis(ttl))
            .arg(Utc::now().timestamp_millis())
            .arg(quota.max)
            .arg(&session.id)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(stored == 1)
    }

    pub(super) async fn store_batch_capped(
        &self,
        batch: &Batch,
        max_open: u32,
    ) -> Result<bool, StateError> {
        let owner_batches = self.keys.owner_batches(&batch.owner);
        // The members read here are checked (and dropped when no longer open) inside the
        // script; one added in between is not listed and counts as open there.
        let members: Vec<String> = self
            .conn()
            .zrange(&owner_batches, 0, -1)
            .await
            .map_err(redis_error)?;
        let listed: Vec<(String, String)> = members
            .into_iter()
            .filter_map(|m| {
                let id = Uuid::parse_str(&m).ok()?;
                Some((self.keys.batch_hash(id), m))
            })
            .collect();
        let hashes: Vec<String> = listed.iter().map(|(key, _)| key.clone()).collect();
        let mut invocation =
            self.scripts
                .create_batch_capped(&self.keys.batch(batch.id), &owner_batches, &hashes);
        invocation
            .arg(to_json(batch)?)
            .arg(batch.expires_at.timestamp_millis())
            .arg(batch.id.to_string())
            .arg(max_open)
            .arg(Utc::now().timestamp_millis());
        for (_, id) in &listed {
            invocation.arg(id);
        }
        let created: i64 = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(created == 1)
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
