//! What a batch leaves behind once it is gone: I6 after a delete, I7 after its expiry.

use std::time::Duration;

use tirage_core::keys;
use tirage_ports::StateStore;
use uuid::Uuid;

use super::Verdict;
use crate::ledger::{BatchInfo, Ledger};
use crate::objects::SimObjects;

/// I6: a deleted batch leaves nothing: no record, no object under its prefix (once its
/// re-sweep has run, which the run waits for).
pub async fn nothing_left(
    verdict: &mut Verdict,
    state: &dyn StateStore,
    objects: &SimObjects,
    batch_id: Uuid,
    label: &str,
) {
    match state.get_batch(batch_id).await {
        Ok(None) => {}
        Ok(Some(b)) => verdict.violation(format!(
            "I6 {label}: deleted, yet its record is still there ({:?})",
            b.state
        )),
        Err(e) => verdict.violation(format!("sim: reading {label}: {e}")),
    }
    let left = objects.keys_under(&keys::batch_prefix(batch_id));
    if !left.is_empty() {
        verdict.violation(format!(
            "I6 {label}: deleted, yet {} objects are left under its prefix (first: {})",
            left.len(),
            left[0]
        ));
    }
}

/// I7: an expired batch leaves no record, leaves the reconciler's index, and no object
/// written before it expired is left (the sweep removes them, which the run waits for).
/// Objects written after the sweep by a job still running then (one that died before
/// removing its renditions) are counted as `late_writes`: the bucket's lifecycle rule
/// removes them, which the simulator does not model.
pub async fn swept(
    verdict: &mut Verdict,
    ledger: &Ledger,
    (state, objects): (&dyn StateStore, &SimObjects),
    batch_id: Uuid,
    info: &BatchInfo,
) {
    let label = &info.label;
    match state.get_batch(batch_id).await {
        Ok(None) => {}
        Ok(Some(b)) => verdict.violation(format!(
            "I7 {label}: expired, yet its record is still there ({:?})",
            b.state
        )),
        Err(e) => verdict.violation(format!("sim: reading {label}: {e}")),
    }
    match still_indexed(state, batch_id).await {
        Ok(false) => {}
        Ok(true) => verdict.violation(format!(
            "I7 {label}: expired, yet still in the reconciler's index"
        )),
        Err(e) => verdict.violation(format!("sim: reading the index: {e}")),
    }
    let (early, late) = written_around(objects, batch_id, info.expires_at);
    if let Some((key, written)) = early.first() {
        verdict.violation(format!(
            "I7 {label}: expired at {} ms, yet {} objects written before are left (first: {key}, \
             written at {} ms)",
            info.expires_at.as_millis(),
            early.len(),
            written.as_millis()
        ));
    }
    for _ in late {
        ledger.count("late_writes");
    }
}

/// Whether the reconciler's index still lists `batch_id`.
pub async fn still_indexed(
    state: &dyn StateStore,
    batch_id: Uuid,
) -> Result<bool, tirage_ports::StateError> {
    const PAGE: usize = 1000;
    let mut offset = 0;
    loop {
        let page = state.indexed_batches(offset, PAGE).await?;
        if page.iter().any(|b| b.id == batch_id) {
            return Ok(true);
        }
        if page.len() < PAGE {
            return Ok(false);
        }
        offset += page.len();
    }
}

/// Whether an expired batch is swept: no object written before it expired is left, and it
/// left the index.
pub async fn is_swept(
    state: &dyn StateStore,
    objects: &SimObjects,
    batch_id: Uuid,
    expires_at: Duration,
) -> bool {
    let (early, _) = written_around(objects, batch_id, expires_at);
    early.is_empty() && !still_indexed(state, batch_id).await.unwrap_or(true)
}

/// The objects under `batch_id`'s prefix (key, when written): those written by
/// `expires_at`, which its sweep owns, and those written after it.
type Written = Vec<(String, Duration)>;
fn written_around(
    objects: &SimObjects,
    batch_id: Uuid,
    expires_at: Duration,
) -> (Written, Written) {
    objects
        .written_under(&keys::batch_prefix(batch_id))
        .into_iter()
        .partition(|(_, written)| *written <= expires_at)
}
