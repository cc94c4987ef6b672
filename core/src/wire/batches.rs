//! `POST /v1/batches`, `GET /v1/batches/{id}`, `POST …/close`, and the batch's event stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{Batch, BatchOptions, BatchState, InvalidOptions, MetadataChoice, OutputFormat};

/// Options of a new batch; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateBatchRequest {
    /// Short side of each rendition, 1 to 8 distinct values in 16..=8192. Default [1080, 720, 360].
    #[cfg_attr(feature = "openapi", schema(example = json!([1080, 720, 360])))]
    // Absent rather than null when unset, so a client sends only what it chose.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::integer::option_vec_i64"
    )]
    pub sizes: Option<Vec<i64>>,
    /// `jpeg`, `webp`, `png` or `avif`. Default `jpeg`.
    #[cfg_attr(feature = "openapi", schema(example = "jpeg"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// 1..=100. Default 85.
    #[cfg_attr(feature = "openapi", schema(example = 85))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::integer::option_i64"
    )]
    pub quality: Option<i64>,
    /// http(s) URL POSTed the `batch.completed` event when the batch completes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// What of each original's metadata its renditions keep: `strip` (nothing) or
    /// `copyright` (its EXIF Artist and Copyright, never GPS or any other tag, and an sRGB
    /// ICC profile). Default `strip`.
    #[cfg_attr(feature = "openapi", schema(example = "strip"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

impl CreateBatchRequest {
    /// The resize options asked for, each absent field at its default; the first field at
    /// fault otherwise (in the order sizes, format, quality, metadata).
    pub fn options(&self) -> Result<BatchOptions, InvalidOptions> {
        let defaults = BatchOptions::default();
        Ok(BatchOptions {
            sizes: match &self.sizes {
                Some(sizes) => BatchOptions::parse_sizes(sizes)?,
                None => defaults.sizes,
            },
            format: match &self.format {
                Some(format) => format.parse()?,
                None => defaults.format,
            },
            quality: match self.quality {
                Some(quality) => BatchOptions::parse_quality(quality)?,
                None => defaults.quality,
            },
            metadata: match &self.metadata {
                Some(metadata) => metadata.parse()?,
                None => defaults.metadata,
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchView {
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "open"))]
    pub state: BatchState,
    pub sizes: Vec<u32>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "jpeg"))]
    pub format: OutputFormat,
    pub quality: u8,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "strip"))]
    pub metadata: MetadataChoice,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl BatchView {
    /// Closed, and every photo done or failed: nothing will change any more.
    pub fn is_completed(&self) -> bool {
        self.state == BatchState::Completed
    }
}

impl From<&Batch> for BatchView {
    fn from(b: &Batch) -> Self {
        BatchView {
            id: b.id,
            state: b.state,
            sizes: b.options.sizes.clone(),
            format: b.options.format,
            quality: b.options.quality,
            metadata: b.options.metadata,
            total: b.total,
            done: b.done,
            failed: b.failed,
            created_at: b.created_at,
            expires_at: b.expires_at,
        }
    }
}
