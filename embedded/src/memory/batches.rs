//! A batch's counts, by the rules of the Redis scripts (`add_photos.lua`, `close_batch.lua`,
//! `record_outcome.lua`): photos registered once whatever the retries, the photo limit held
//! against registered and pending photos alike, every photo's outcome counted once, and the
//! batch completed exactly when its last photo is counted after it was closed. Each runs
//! under the store's one lock, so it is atomic.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::BatchEntry;
use tirage_core::model::{Batch, BatchState, PhotoOutcome, PhotoRecord, PhotoState};
use tirage_ports::records::apply_outcome;
use tirage_ports::{CloseResult, RecordResult, StateError};

impl BatchEntry {
    /// Registers `photos` (those not registered yet) unless the batch would pass `limit`.
    pub(super) fn add(
        &mut self,
        photos: &[PhotoRecord],
        limit: u64,
        now: DateTime<Utc>,
    ) -> Result<Batch, StateError> {
        if self.batch.state != BatchState::Open {
            return Err(StateError::BatchClosed);
        }
        // A photo already registered (a retried request) is neither added nor counted twice.
        let mut fresh: Vec<&PhotoRecord> = Vec::with_capacity(photos.len());
        let mut seen = HashSet::new();
        for photo in photos {
            if !self.photos.contains_key(&photo.id) && seen.insert(photo.id) {
                fresh.push(photo);
            }
        }
        // Live pending uploads hold their place too, except those of the photos at hand.
        let at_hand: HashSet<Uuid> = fresh.iter().map(|p| p.id).collect();
        let pending = self.live_pending(now, &at_hand);
        if self.batch.total + pending + fresh.len() as u64 > limit {
            return Err(StateError::TooManyPhotos { limit });
        }
        for photo in fresh {
            self.order.push(photo.id);
            self.photos.insert(photo.id, photo.clone());
            self.batch.total += 1;
        }
        Ok(self.batch.clone())
    }

    /// Closes an open batch: completed at once when every photo is counted already.
    pub(super) fn close(&mut self) -> CloseResult {
        let mut completed_now = false;
        if self.batch.state == BatchState::Open {
            if self.batch.done + self.batch.failed == self.batch.total {
                self.batch.state = BatchState::Completed;
                completed_now = true;
            } else {
                self.batch.state = BatchState::Processing;
            }
        }
        CloseResult {
            batch: self.batch.clone(),
            completed_now,
        }
    }

    /// Counts a queued photo's outcome, once.
    pub(super) fn record(&mut self, photo_id: Uuid, outcome: &PhotoOutcome) -> RecordResult {
        let Some(photo) = self.photos.get_mut(&photo_id) else {
            return RecordResult::UnknownPhoto {
                batch: self.batch.clone(),
            };
        };
        if photo.state != PhotoState::Queued {
            return RecordResult::AlreadyRecorded {
                batch: self.batch.clone(),
            };
        }
        apply_outcome(photo, outcome);
        match outcome {
            PhotoOutcome::Done { .. } => self.batch.done += 1,
            PhotoOutcome::Failed { .. } => self.batch.failed += 1,
        }
        let b = &mut self.batch;
        let completed_now = b.state == BatchState::Processing && b.done + b.failed == b.total;
        if completed_now {
            b.state = BatchState::Completed;
        }
        RecordResult::Recorded {
            batch: b.clone(),
            completed_now,
        }
    }
}
