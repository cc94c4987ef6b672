//! Reading one rendition of a batch's photo: which object holds it (refused with the
//! reason when the size is not the batch's, the photo is unknown, or it is not done yet),
//! then its bytes — whole, or one range — as a stream from the object store.

use std::ops::Range;

use tirage_core::keys;
use tirage_core::model::{Batch, PhotoState, Rendition};
use tirage_ports::{ObjectBody, ObjectStoreError};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// A rendition that exists: its record (size, bytes, digest) and its object's key.
pub struct Found {
    pub rendition: Rendition,
    pub key: String,
}

/// The `size` rendition of photo `photo_id` of `batch`.
pub async fn find(
    state: &AppState,
    batch: &Batch,
    photo_id: Uuid,
    size: u32,
) -> Result<Found, ApiError> {
    if !batch.options.sizes.contains(&size) {
        return Err(ApiError::RenditionNotFound(format!(
            "size {size} is not one of this batch's sizes"
        )));
    }
    let photo = state
        .ports
        .state
        .get_photo(batch.id, photo_id)
        .await?
        .ok_or(ApiError::PhotoNotFound)?;
    let rendition = photo
        .outputs
        .iter()
        .find(|r| r.size == size)
        .filter(|_| photo.state == PhotoState::Done)
        .cloned()
        .ok_or_else(|| {
            ApiError::RenditionNotFound(format!(
                "photo is {}; no {size} rendition",
                match photo.state {
                    PhotoState::Queued => "still queued",
                    PhotoState::Done => "done",
                    PhotoState::Failed => "failed",
                }
            ))
        })?;
    let key = keys::rendition_key(batch.id, photo_id, size, batch.options.format);
    Ok(Found { rendition, key })
}

/// The rendition's bytes, whole (`part` `None`) or the one range asked for, streamed from
/// the store as they arrive: a replica serving many large renditions at once holds a few
/// chunks of each, never whole images.
pub async fn open(
    state: &AppState,
    found: &Found,
    part: Option<Range<u64>>,
) -> Result<ObjectBody, ApiError> {
    let objects = &state.ports.objects;
    let object = match part {
        None => objects.get_stream(&found.key).await,
        Some(range) => objects.get_range(&found.key, range).await,
    };
    object.map_err(|e| match e {
        ObjectStoreError::NotFound(_) => {
            ApiError::RenditionNotFound("the rendition object is missing".into())
        }
        other => other.into(),
    })
}
