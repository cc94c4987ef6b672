//! `GET /v1/batches/{id}/photos`: each photo's state and renditions.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{PhotoRecord, PhotoState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutputView {
    pub size: u32,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// API path of the rendition (with the session).
    pub url: String,
    /// A signed API path of the rendition that needs no session and that a CDN may cache
    /// until the batch expires; present when the server signs rendition URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PhotoView {
    pub id: Uuid,
    pub filename: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "done"))]
    pub state: PhotoState,
    /// Stable code of the failure when `state` is `failed`: one of the document's
    /// `x-photo-failure-codes`.
    // A string rather than `FailureCode`, so a client reads codes newer than itself.
    pub error: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub outputs: Vec<OutputView>,
    /// What the owner should know of a photo done although it rendered, each a stable code
    /// of the document's `x-photo-warnings` (`truncated`: the original ends before its
    /// image does). Empty for most photos.
    // Strings rather than `PhotoWarning`, so a client reads warnings newer than itself.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl PhotoView {
    pub fn new(batch_id: Uuid, p: &PhotoRecord) -> Self {
        PhotoView {
            id: p.id,
            filename: p.filename.clone(),
            state: p.state,
            error: p.error.map(String::from),
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
                    public_url: None,
                })
                .collect(),
            warnings: p.warnings.iter().map(|w| w.as_str().to_owned()).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PhotoList {
    pub photos: Vec<PhotoView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct PageQuery {
    /// Photos per page (default 100, at most 1000 unless configured otherwise).
    pub limit: Option<usize>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}
