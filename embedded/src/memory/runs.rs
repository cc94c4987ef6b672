//! Runs and outcomes in memory ([`Runs`]): the same hold rules as the Redis adapter's
//! `run_hold.lua`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::MemoryStateStore;
use tirage_core::model::PhotoOutcome;
use tirage_ports::{RecordResult, RunHold, RunStart, Runs, StateError};

/// A photo's runs: how many ended with their worker dying, and the run holding it now.
#[derive(Debug, Clone, Default)]
pub(super) struct RunRecord {
    crashed: u32,
    /// The holding run's token and until when its hold lasts.
    holder: Option<(Uuid, DateTime<Utc>)>,
}

impl RunRecord {
    /// The crashed runs as of `now`: a hold lapsed unended counts as one.
    fn crashed_at(&self, now: DateTime<Utc>) -> u32 {
        let lapsed = self.holder.is_some_and(|(_, until)| until <= now);
        self.crashed.saturating_add(u32::from(lapsed))
    }
}

fn until(hold: &RunHold) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(hold.until_ms()).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[async_trait]
impl Runs for MemoryStateStore {
    async fn record_outcome(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        outcome: &PhotoOutcome,
    ) -> Result<RecordResult, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        let result = entry.record(photo_id, outcome);
        if matches!(result, RecordResult::Recorded { .. }) {
            inner.wrote(now);
            self.announce(batch_id);
        }
        Ok(result)
    }

    async fn crashed_runs(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u32, StateError> {
        let expiry_now = self.clock.now();
        let mut inner = self.lock();
        Ok(inner
            .batch(batch_id, expiry_now)
            .and_then(|e| e.runs.get(&photo_id))
            .map_or(0, |record| record.crashed_at(now)))
    }

    async fn start_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<RunStart, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        let record = entry.runs.entry(photo_id).or_default();
        if let Some((holder, lasts_until)) = record.holder
            && holder != hold.token
        {
            if lasts_until > hold.now {
                return Ok(RunStart::Held);
            }
            record.crashed = record.crashed.saturating_add(1);
        }
        record.holder = Some((hold.token, until(&hold)));
        let crashed = record.crashed;
        inner.wrote(now);
        Ok(RunStart::Started { crashed })
    }

    async fn renew_run(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        hold: RunHold,
    ) -> Result<bool, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        let Some(record) = entry.runs.get_mut(&photo_id) else {
            return Ok(false);
        };
        match record.holder {
            Some((holder, _)) if holder == hold.token => {
                record.holder = Some((holder, until(&hold)));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn end_run(&self, batch_id: Uuid, photo_id: Uuid, token: Uuid) -> Result<(), StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner.batch(batch_id, now).ok_or(StateError::NotFound)?;
        if let Some(record) = entry.runs.get_mut(&photo_id)
            && record.holder.is_some_and(|(holder, _)| holder == token)
        {
            record.holder = None;
        }
        Ok(())
    }
}
