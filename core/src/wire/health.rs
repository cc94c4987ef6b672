//! `GET /readyz`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ErrorDetail;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// Each dependency and `ok` or why it failed.
    pub checks: BTreeMap<String, String>,
    /// Present on 503: which dependency failed, as the common error object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}
