//! What `tirage-worker admin` shows and does, over a deployment's ports (the command line is
//! in [`crate::binary`]): one batch's whole state as the workers see it, the dead letters
//! (listed, replayed). Reports are JSON, for people and scripts alike.

use chrono::Utc;
use serde::Serialize;
use tirage_core::codes::Effect;
use tirage_core::model::{Batch, PhotoRecord};
use tirage_ports::{QueueError, StateError, WorkItem};
use uuid::Uuid;

use crate::context::Ports;

/// Photos read per page of a batch.
const PAGE: usize = 1000;

/// One batch, as the workers see it.
#[derive(Debug, Serialize)]
pub struct BatchReport {
    pub batch: Batch,
    pub photos: Vec<PhotoReport>,
    /// Effect name → whether it is done.
    pub effects: Vec<(String, bool)>,
}

#[derive(Debug, Serialize)]
pub struct PhotoReport {
    #[serde(flatten)]
    pub record: PhotoRecord,
    /// Runs of its resize that ended with their worker dying (`crash_limit` fails it).
    pub crashed_runs: u32,
}

/// The batch `batch_id` with every photo and effect; `None` when it does not exist.
pub async fn batch_report(
    ports: &Ports,
    batch_id: Uuid,
) -> Result<Option<BatchReport>, StateError> {
    let state = &ports.state;
    let Some(batch) = state.get_batch(batch_id).await? else {
        return Ok(None);
    };
    let mut photos = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = state.list_photos(batch_id, cursor.as_deref(), PAGE).await?;
        for record in page.photos {
            let crashed_runs = state.crashed_runs(batch_id, record.id, Utc::now()).await?;
            photos.push(PhotoReport {
                record,
                crashed_runs,
            });
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut effects = Vec::new();
    for (effect, _) in Effect::TABLE {
        let done = state.is_effect_done(batch_id, *effect).await?;
        effects.push((effect.as_str().to_owned(), done));
    }
    Ok(Some(BatchReport {
        batch,
        photos,
        effects,
    }))
}

/// What a work item is, and for which batch and photo.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ItemView {
    /// `resize`, `finalize_batch`, `callback`, or `malformed` for bytes that never parsed.
    pub kind: String,
    pub batch_id: Option<Uuid>,
    pub photo_id: Option<Uuid>,
}

impl ItemView {
    fn of(item: Option<&WorkItem>) -> ItemView {
        let (kind, photo_id) = match item {
            Some(WorkItem::Resize(job)) => ("resize", Some(job.photo_id)),
            Some(WorkItem::FinalizeBatch { .. }) => ("finalize_batch", None),
            Some(WorkItem::Callback { .. }) => ("callback", None),
            None => ("malformed", None),
        };
        ItemView {
            kind: kind.to_owned(),
            batch_id: item.map(WorkItem::batch_id),
            photo_id,
        }
    }
}

/// A dead letter as listed: what it was, and at which attempt and why it was given up on.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct DeadLetterView {
    #[serde(flatten)]
    pub item: ItemView,
    pub attempt: u32,
    pub reason: String,
}

/// The first `limit` dead letters, those of `batch` only when given.
pub async fn dead_letters(
    ports: &Ports,
    batch: Option<Uuid>,
    limit: usize,
) -> Result<Vec<DeadLetterView>, QueueError> {
    let letters = ports.queue.dead_letters(limit).await?;
    Ok(letters
        .iter()
        .map(|letter| DeadLetterView {
            item: ItemView::of(letter.item().as_ref()),
            attempt: letter.attempt,
            reason: letter.reason.clone(),
        })
        .filter(|view| batch.is_none() || view.item.batch_id == batch)
        .collect())
}

/// Replays the dead letters among the first `limit` that parse, those of `batch` only when
/// given: each goes back on its lane as a first attempt (jobs are idempotent, so a photo
/// done meanwhile is only acknowledged). Returns what was replayed.
pub async fn replay_dead_letters(
    ports: &Ports,
    batch: Option<Uuid>,
    limit: usize,
) -> Result<Vec<ItemView>, QueueError> {
    let select = move |item: &WorkItem| batch.is_none_or(|b| item.batch_id() == b);
    let replayed = ports.queue.replay_dead_letters(limit, &select).await?;
    Ok(replayed
        .iter()
        .map(|item| ItemView::of(Some(item)))
        .collect())
}
