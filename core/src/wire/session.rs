//! `POST /v1/sessions`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionCreated {
    /// Bearer token; also set as the `tirage_session` cookie. Shown once.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}
