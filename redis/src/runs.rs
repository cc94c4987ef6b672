//! The run counter behind crash-loop detection ([`Runs::start_run`]): hash
//! `batch:{id}:runs`, photo id → `attempt:runs`.
//!
//! [`Runs::start_run`]: tirage_ports::Runs::start_run

use async_trait::async_trait;
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStateStore;
use super::codec::{redis_error, status_reply, to_json};
use tirage_core::model::PhotoOutcome;
use tirage_ports::{RecordResult, Runs, StateError};

/// The runs a stored `attempt:runs` value counts for `attempt` (0 for another attempt).
fn runs_at(stored: Option<&str>, attempt: u32) -> u32 {
    stored
        .and_then(|s| s.split_once(':'))
        .filter(|(at, _)| at.parse() == Ok(attempt))
        .and_then(|(_, runs)| runs.parse().ok())
        .unwrap_or(0)
}

impl RedisStateStore {
    pub(super) async fn read_runs(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        attempt: u32,
    ) -> Result<u32, StateError> {
        let stored: Option<String> = self
            .conn()
            .hget(self.keys.batch(batch_id).runs, photo_id.to_string())
            .await
            .map_err(redis_error)?;
        Ok(runs_at(stored.as_deref(), attempt))
    }

    pub(super) async fn count_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        attempt: u32,
    ) -> Result<u32, StateError> {
        let before: i64 = self
            .scripts
            .start_run(&self.keys.batch(batch_id))
            .arg(photo_id.to_string())
            .arg(attempt)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        if before < 0 {
            return Err(StateError::NotFound);
        }
        Ok(u32::try_from(before).unwrap_or(u32::MAX))
    }
}

#[async_trait]
impl Runs for RedisStateStore {
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
}

#[cfg(test)]
mod tests {
    use super::runs_at;

    #[test]
    fn runs_count_only_for_their_own_attempt() {
        assert_eq!(runs_at(Some("2:3"), 2), 3);
        assert_eq!(runs_at(Some("2:3"), 3), 0);
        assert_eq!(runs_at(None, 1), 0);
        assert_eq!(runs_at(Some("garbage"), 1), 0);
    }
}
