//! What several adapters of one port share: the dead letter a queue gives up on, and the
//! record and paging rules both state stores apply.

use crate::StateError;
use tirage_core::model::{PhotoOutcome, PhotoRecord, PhotoState};

/// Largest page `list_photos` returns, whatever the caller asks.
pub const MAX_PAGE: usize = 1000;

/// Turns a queued record into its final form.
pub fn apply_outcome(record: &mut PhotoRecord, outcome: &PhotoOutcome) {
    match outcome {
        PhotoOutcome::Done {
            width,
            height,
            renditions,
            warnings,
        } => {
            record.state = PhotoState::Done;
            record.error = None;
            record.width = Some(*width);
            record.height = Some(*height);
            record.outputs = renditions.clone();
            record.warnings = warnings.clone();
        }
        PhotoOutcome::Failed { code } => {
            record.state = PhotoState::Failed;
            record.error = Some(*code);
        }
    }
}

/// The index range a page covers. Cursors are offsets into the insertion order, which only
/// grows, so a cursor stays valid while photos are added. An unparsable cursor names no page:
/// [`StateError::NotFound`].
pub fn page_bounds(cursor: Option<&str>, limit: usize) -> Result<(usize, usize), StateError> {
    let start = match cursor {
        None => 0,
        Some(c) => c.parse::<usize>().map_err(|_| StateError::NotFound)?,
    };
    let limit = limit.clamp(1, MAX_PAGE);
    Ok((start, start.saturating_add(limit)))
}
