//! What the handlers read from a request besides their extractors: the batch a route names
//! (when it is the caller's) and a bounded JSON body.

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tirage_core::model::Batch;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;

/// The batch, if it exists and belongs to the caller's session. Another session's batch is
/// reported exactly like a missing one, so ids cannot be probed.
pub async fn owned_batch(
    state: &AppState,
    auth: &Authenticated,
    batch_id: Uuid,
) -> Result<Batch, ApiError> {
    let batch = match &auth.route_batch {
        // Read along with the session when the request was authenticated.
        Some((id, read)) if *id == batch_id => read.clone(),
        _ => state.ports.state.get_batch(batch_id).await?,
    };
    match batch {
        Some(batch) if batch.owner == auth.session.id => Ok(batch),
        _ => Err(ApiError::BatchNotFound),
    }
}

/// Reads a JSON body of at most `limit` bytes. `Ok(None)` for an empty body (every field of
/// our requests is optional or checked by the caller). Syntax errors are 400, well-formed
/// JSON of the wrong shape is 422, a non-JSON content type is 415.
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Option<T>, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::MalformedJson(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::BodyTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let json = ct
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || m.ends_with("+json")
            })
            .unwrap_or(false);
        if !json {
            return Err(ApiError::UnsupportedMediaType {
                expected: "application/json",
            });
        }
    }
    parse_json(&body).map(Some)
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidBody(e.to_string()),
        _ => ApiError::MalformedJson(e.to_string()),
    })
}
