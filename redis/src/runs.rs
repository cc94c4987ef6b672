//! Runs and outcomes ([`Runs`]): the hold behind crash-loop detection in hash
//! `batch:{id}:runs`, photo id → `crashed:holder:until` (`run_hold.lua`), and the
//! exactly-once outcome (`record_outcome.lua`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStateStore;
use super::codec::{redis_error, status_reply, to_json};
use tirage_core::model::PhotoOutcome;
use tirage_ports::{RecordResult, RunHold, RunStart, Runs, StateError};

/// The crashed runs a stored `crashed:holder:until` value counts as of `now_ms`: those
/// counted, plus a hold lapsed unended. 0 for anything else (no value, the format before
/// holds).
fn crashed_at(stored: Option<&str>, now_ms: i64) -> u32 {
    let Some(mut parts) = stored.map(|s| s.split(':')) else {
        return 0;
    };
    let (Some(crashed), Some(holder), Some(until), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return 0;
    };
    let crashed: u32 = crashed.parse().unwrap_or(0);
    let lapsed = !holder.is_empty() && until.parse::<i64>().is_ok_and(|u| u <= now_ms);
    crashed.saturating_add(u32::from(lapsed))
}

/// What `run_hold.lua` is asked to do.
#[derive(Clone, Copy)]
enum Mode {
    Start,
    Renew,
    End,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Start => "start",
            Mode::Renew => "renew",
            Mode::End => "end",
        }
    }
}

impl RedisStateStore {
    async fn run_hold(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        mode: Mode,
        hold: RunHold,
    ) -> Result<i64, StateError> {
        let reply: i64 = self
            .scripts
            .run_hold(&self.keys.batch(batch_id))
            .arg(photo_id.to_string())
            .arg(mode.as_str())
            .arg(hold.token.to_string())
            .arg(hold.now.timestamp_millis())
            .arg(u64::try_from(hold.lasts.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        if reply == -1 {
            return Err(StateError::NotFound);
        }
        Ok(reply)
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

    async fn crashed_runs(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u32, StateError> {
        let stored: Option<String> = self
            .conn()
            .hget(self.keys.batch(batch_id).runs, photo_id.to_string())
            .await
            .map_err(redis_error)?;
        Ok(crashed_at(stored.as_deref(), now.timestamp_millis()))
    }

    async fn start_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<RunStart, StateError> {
        match self.run_hold(batch_id, photo_id, Mode::Start, hold).await? {
            -2 => Ok(RunStart::Held),
            crashed => Ok(RunStart::Started {
                crashed: u32::try_from(crashed).unwrap_or(u32::MAX),
            }),
        }
    }

    async fn renew_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<bool, StateError> {
        Ok(self.run_hold(batch_id, photo_id, Mode::Renew, hold).await? == 1)
    }

    async fn end_run(&self, batch_id: Uuid, photo_id: Uuid, token: Uuid) -> Result<(), StateError> {
        let hold = RunHold {
            token,
            now: Utc::now(),
            lasts: std::time::Duration::ZERO,
        };
        self.run_hold(batch_id, photo_id, Mode::End, hold)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::crashed_at;

    #[test]
    fn a_lapsed_hold_counts_as_one_more_crash() {
        let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        assert_eq!(crashed_at(Some(&format!("2:{id}:1000")), 999), 2);
        assert_eq!(crashed_at(Some(&format!("2:{id}:1000")), 1000), 3);
        assert_eq!(
            crashed_at(Some("2::0"), 5000),
            2,
            "no holder, nothing lapsed"
        );
        assert_eq!(crashed_at(Some("2:3"), 5000), 0, "the format before holds");
        assert_eq!(crashed_at(None, 1), 0);
        assert_eq!(crashed_at(Some("garbage"), 1), 0);
    }
}
