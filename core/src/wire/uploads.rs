//! `POST /v1/batches/{id}/photos` (multipart) and the presigned path: `POST …/uploads`, the
//! client's PUT, then `POST …/photos/{photo}/complete`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::PhotoState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcceptedPhoto {
    pub id: Uuid,
    pub filename: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "queued"))]
    pub state: PhotoState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PhotosAccepted {
    pub photos: Vec<AcceptedPhoto>,
}

/// The multipart form of `POST /v1/batches/{batch_id}/photos`, described for the API
/// document only: the API streams the parts as they arrive and never builds this type.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
pub struct PhotoUploadForm {
    /// A photo's bytes; repeat the part for more photos. Its Content-Type is kept when it
    /// is an `image/*` type.
    #[schema(schema_with = photo_part)]
    pub file: Vec<u8>,
}

/// A non-empty file. Parts with other (plain) names are ignored.
#[cfg(feature = "openapi")]
fn photo_part() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .min_length(Some(1))
        .build()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadsRequest {
    pub files: Vec<UploadFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadFile {
    pub filename: String,
    /// Bytes the client will upload; at most the per-file limit.
    #[serde(deserialize_with = "super::integer::u64")]
    pub size: u64,
    /// An `image/*` media type; the client must send it as Content-Type.
    #[cfg_attr(feature = "openapi", schema(example = "image/jpeg"))]
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadTicket {
    pub photo_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(example = "PUT"))]
    pub method: String,
    pub url: String,
    /// Headers to send with the upload, exactly as given.
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadsCreated {
    pub uploads: Vec<UploadTicket>,
}
