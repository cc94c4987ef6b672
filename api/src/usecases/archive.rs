//! One ZIP of a batch's renditions (`GET /v1/batches/{id}/archive`): every done photo's
//! renditions of the chosen sizes, in upload order, named `<stem>_<size>.<ext>`.
//!
//! The archive is laid out from the sizes the worker recorded with each rendition (no
//! request to the object store per file: a full batch has up to 40,000), so its exact
//! length is known before the answer starts. Then the renditions stream from the store one
//! after the other ([`crate::archive::write`]); nothing holds more than one chunk of one
//! rendition.
//!
//! A rendition that is missing, fails or has another size than recorded cannot be reported
//! in the answer once it started: the stream ends with an error, the server cuts the connection, and the client
//! receives fewer bytes than `Content-Length` announced — a failed download it can retry,
//! never a complete-looking archive with a file missing or wrong. The cut is logged.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use tirage_core::keys;
use tirage_core::model::{Batch, PhotoRecord, PhotoState};
use tirage_ports::{ObjectStore, Payer};
use uuid::Uuid;

use crate::archive::{Layout, UniqueStems, WriteError, entry_name, safe_stem, write};
use crate::auth::charge_requests;
use crate::error::ApiError;
use crate::state::AppState;
use crate::usecases::slots::{self, Lease};

/// The archive as the route sends it.
pub struct ArchiveDownload {
    /// For `Content-Disposition`: `tirage-<batch id>.zip`.
    pub filename: String,
    /// The exact number of bytes `body` yields when nothing fails.
    pub length: u64,
    pub body: Pin<Box<dyn Stream<Item = Result<Bytes, WriteError>>>>,
}

/// One file of the archive: its name, its object and its recorded size.
struct Wanted {
    name: String,
    key: String,
    size: u64,
}

/// Lays out the archive of `batch` (the caller's, already checked) and returns it ready to
/// stream. `requested` narrows the sizes; each must be one of the batch's. The archive holds
/// one of its session's `api.archives_per_session` slots and one of its client address's
/// `api.archives_per_address` while it streams (`too_many_archives` when they are all
/// taken), and costs the session a request per file it holds, as the downloads it replaces
/// would (`rate_limited` past the session's limit).
pub async fn prepare(
    state: &AppState,
    payer: Payer<'_>,
    batch: &Batch,
    requested: Option<&[u32]>,
) -> Result<ArchiveDownload, ApiError> {
    let session_id = payer.session_id;
    let sizes = chosen_sizes(&batch.options.sizes, requested)?;
    let photos = all_photos(state, batch.id).await?;
    let wanted = entries(batch, &photos, &sizes);
    // The archive's own request is counted already.
    let more = u32::try_from(wanted.len().saturating_sub(1)).unwrap_or(u32::MAX);
    charge_requests(state, session_id, more).await?;
    let api = &state.settings.api;
    let caps = slots::caps(
        session_id,
        payer.address,
        "archives",
        api.archives_per_session,
        api.archives_per_address,
    );
    let lease = Lease::open(state.ports.state.clone(), caps, api.archive_lease())
        .await?
        .map_err(|full| ApiError::TooManyArchives {
            scope: full.scope,
            limit: full.limit,
        })?;
    let lease = Arc::new(lease);
    let objects = state.ports.objects.clone();
    let (names, keys): (Vec<(String, u64)>, Vec<String>) = wanted
        .into_iter()
        .map(|w| ((w.name, w.size), w.key))
        .unzip();
    let layout = Layout::plan(names, batch.created_at)
        .map_err(|e| ApiError::Internal(format!("archive layout: {e}")))?;
    let length = layout.total_len();
    Ok(ArchiveDownload {
        filename: format!("tirage-{}.zip", batch.id),
        length,
        // The slot lives as long as the body, renewed while its bytes flow.
        body: Box::pin(
            stream_from(objects, keys, layout, batch.id).then(move |chunk| {
                let lease = lease.clone();
                async move {
                    lease.renew_when_due().await;
                    chunk
                }
            }),
        ),
    })
}

/// The sizes to include, in the batch's order: all of the batch's, or those asked for
/// (`unknown_size` for one the batch does not have).
fn chosen_sizes(batch_sizes: &[u32], requested: Option<&[u32]>) -> Result<Vec<u32>, ApiError> {
    let Some(requested) = requested else {
        return Ok(batch_sizes.to_vec());
    };
    if let Some(unknown) = requested.iter().find(|s| !batch_sizes.contains(s)) {
        let known: Vec<String> = batch_sizes.iter().map(u32::to_string).collect();
        return Err(ApiError::UnknownSize(format!(
            "size {unknown} is not one of this batch's sizes ({})",
            known.join(", ")
        )));
    }
    Ok(batch_sizes
        .iter()
        .copied()
        .filter(|s| requested.contains(s))
        .collect())
}

/// Every photo of the batch, in upload order, a page at a time.
async fn all_photos(state: &AppState, batch_id: Uuid) -> Result<Vec<PhotoRecord>, ApiError> {
    let page_size = state.settings.limits.page_max.max(1);
    let mut photos = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = state
            .ports
            .state
            .list_photos(batch_id, cursor.as_deref(), page_size)
            .await?;
        photos.extend(page.photos);
        match page.next_cursor {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            _ => return Ok(photos),
        }
    }
}

/// The archive's files: for each done photo, in order, its renditions of `sizes`. Stems
/// are claimed for every done photo whatever the sizes, so a photo's files are named the
/// same in every archive of its batch.
fn entries(batch: &Batch, photos: &[PhotoRecord], sizes: &[u32]) -> Vec<Wanted> {
    let format = batch.options.format;
    let mut stems = UniqueStems::default();
    let mut wanted = Vec::new();
    for photo in photos.iter().filter(|p| p.state == PhotoState::Done) {
        let stem = stems.claim(safe_stem(&photo.filename));
        for &size in sizes {
            if let Some(rendition) = photo.outputs.iter().find(|r| r.size == size) {
                wanted.push(Wanted {
                    name: entry_name(&stem, size, format.extension()),
                    key: keys::rendition_key(batch.id, photo.id, size, format),
                    size: rendition.bytes,
                });
            }
        }
    }
    wanted
}

/// The archive's bytes, each rendition read from the store when its turn comes.
fn stream_from(
    objects: Arc<dyn ObjectStore>,
    keys: Vec<String>,
    layout: Layout,
    batch_id: Uuid,
) -> impl Stream<Item = Result<Bytes, WriteError>> {
    let keys = Arc::new(keys);
    write(layout, move |index| {
        let objects = objects.clone();
        let keys = keys.clone();
        async move {
            match keys.get(index) {
                Some(key) => objects.get_stream(key).await.map_err(|e| e.to_string()),
                None => Err("no object for this entry".to_owned()),
            }
        }
    })
    .inspect_err(move |e| {
        tracing::warn!(%batch_id, error = %e, "archive cut short: the connection is closed");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_to_the_batch_and_follow_its_order() {
        let batch = [1080, 720, 360];
        assert_eq!(chosen_sizes(&batch, None).unwrap(), batch);
        assert_eq!(
            chosen_sizes(&batch, Some(&[360, 1080, 360])).unwrap(),
            [1080, 360]
        );
        let err = chosen_sizes(&batch, Some(&[720, 480])).unwrap_err();
        assert_eq!(err.code(), "unknown_size");
        assert!(err.to_string().contains("480"), "{err}");
    }
}
