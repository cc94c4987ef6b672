//! What the API sends and accepts as JSON. Stored types (`tirage_shared::model`) hold more
//! than a client may see (the owner, the callback URL), so they are mapped here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tirage_shared::model::{Batch, BatchState, OutputFormat, PhotoRecord, PhotoState};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionCreated {
    /// Bearer token; also set as the `tirage_session` cookie. Shown once.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Options of a new batch; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatchRequest {
    /// Short side of each rendition, 1 to 8 distinct values in 16..=8192. Default [1080, 720, 360].
    #[schema(example = json!([1080, 720, 360]))]
    pub sizes: Option<Vec<i64>>,
    /// `jpeg`, `webp` or `png`. Default `jpeg`.
    #[schema(example = "jpeg")]
    pub format: Option<String>,
    /// 1..=100. Default 85.
    #[schema(example = 85)]
    pub quality: Option<i64>,
    /// http(s) URL POSTed the `batch.completed` event when the batch completes.
    pub callback_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchView {
    pub id: Uuid,
    #[schema(value_type = String, example = "open")]
    pub state: BatchState,
    pub sizes: Vec<u32>,
    #[schema(value_type = String, example = "jpeg")]
    pub format: OutputFormat,
    pub quality: u8,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<&Batch> for BatchView {
    fn from(b: &Batch) -> Self {
        BatchView {
            id: b.id,
            state: b.state,
            sizes: b.options.sizes.clone(),
            format: b.options.format,
            quality: b.options.quality,
            total: b.total,
            done: b.done,
            failed: b.failed,
            created_at: b.created_at,
            expires_at: b.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedPhoto {
    pub id: Uuid,
    pub filename: String,
    #[schema(value_type = String, example = "queued")]
    pub state: PhotoState,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhotosAccepted {
    pub photos: Vec<AcceptedPhoto>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadsRequest {
    pub files: Vec<UploadFile>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadFile {
    pub filename: String,
    /// Bytes the client will upload; at most the per-file limit.
    pub size: u64,
    /// An `image/*` media type; the client must send it as Content-Type.
    #[schema(example = "image/jpeg")]
    pub content_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadTicket {
    pub photo_id: Uuid,
    #[schema(example = "PUT")]
    pub method: String,
    pub url: String,
    /// Headers to send with the upload, exactly as given.
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadsCreated {
    pub uploads: Vec<UploadTicket>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutputView {
    pub size: u32,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// API path of the rendition.
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoView {
    pub id: Uuid,
    pub filename: String,
    #[schema(value_type = String, example = "done")]
    pub state: PhotoState,
    /// Stable code of the failure when `state` is `failed`.
    pub error: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub outputs: Vec<OutputView>,
}

impl PhotoView {
    pub fn new(batch_id: Uuid, p: &PhotoRecord) -> Self {
        PhotoView {
            id: p.id,
            filename: p.filename.clone(),
            state: p.state,
            error: p.error.clone(),
            width: p.width,
            height: p.height,
            outputs: p
                .outputs
                .iter()
                .map(|r| OutputView {
                    size: r.size,
                    width: r.width,
                    height: r.height,
                    bytes: r.bytes,
                    url: format!("/v1/batches/{batch_id}/photos/{}/{}", p.id, r.size),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoList {
    pub photos: Vec<PhotoView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Photos per page (default 100, at most 1000 unless configured otherwise).
    pub limit: Option<usize>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// Each dependency and `ok` or why it failed.
    pub checks: BTreeMap<String, String>,
    /// Present on 503: which dependency failed, as the common error object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorDetail>,
}
