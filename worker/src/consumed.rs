//! How far this worker has taken resize jobs, reported to the state store's consumed mark
//! (`Upkeep::advance_consumed_mark`) for the reconciler to tell a batch that waits behind a
//! backlog from one whose jobs were lost. Reported at most once per [`REPORT_EVERY`] of
//! wall time, so the mark costs a worker one round trip a second at most, not one per job.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest a worker that keeps taking jobs leaves the mark's `at` unrenewed.
pub(crate) const REPORT_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct ConsumedReport {
    /// The latest publish time of a job this worker took, in Unix milliseconds.
    through_ms: AtomicI64,
    /// When this worker last reported, in Unix milliseconds.
    reported_ms: AtomicI64,
}

impl ConsumedReport {
    /// Notes a job published at `published_at` taken at `now`; returns the publish time to
    /// report when a report is due (of concurrent jobs, one reports).
    pub fn take(&self, published_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let through = self
            .through_ms
            .fetch_max(published_at.timestamp_millis(), Ordering::AcqRel)
            .max(published_at.timestamp_millis());
        let now_ms = now.timestamp_millis();
        let reported = self.reported_ms.load(Ordering::Acquire);
        let every = i64::try_from(REPORT_EVERY.as_millis()).unwrap_or(i64::MAX);
        let due = now_ms >= reported.saturating_add(every)
            && self
                .reported_ms
                .compare_exchange(reported, now_ms, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok();
        due.then(|| DateTime::<Utc>::from_timestamp_millis(through))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_once_a_second_with_the_latest_publish_time_seen() {
        let report = ConsumedReport::default();
        let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000 + ms).unwrap();
        assert_eq!(report.take(at(0), at(10)), Some(at(0)));
        assert_eq!(report.take(at(500), at(400)), None, "within the second");
        assert_eq!(
            report.take(at(-5_000), at(1_010)),
            Some(at(500)),
            "an older job reports the latest publish time seen, never an earlier one"
        );
        assert_eq!(report.take(at(60_000), at(1_500)), None);
        assert_eq!(report.take(at(1_000), at(2_100)), Some(at(60_000)));
    }
}
