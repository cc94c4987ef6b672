//! Opening a session: the API key (when the server has any), the client address's creation
//! rate and its share of live sessions, then a random token whose digest is stored.

use chrono::{DateTime, Utc};
use tirage_ports::{Cap, Session, SessionQuota};

use crate::auth::{check_rate, digest, digests_equal, new_token, session_id};
use crate::error::ApiError;
use crate::state::AppState;

/// A session just opened: the bearer token (only ever held by the client) and its expiry.
pub struct Opened {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Opens a session for the client at `addr` (as the API determined it), who presented
/// `api_key` (the `X-Api-Key` header, if any).
pub async fn open(
    state: &AppState,
    addr: &str,
    api_key: Option<&[u8]>,
) -> Result<Opened, ApiError> {
    if !state.api_key_digests.is_empty() {
        let presented = api_key.map(digest).ok_or(ApiError::InvalidApiKey)?;
        // Check every key, so the time taken does not tell which one was close.
        let matched = state
            .api_key_digests
            .iter()
            .fold(false, |acc, k| acc | digests_equal(k, &presented));
        if !matched {
            return Err(ApiError::InvalidApiKey);
        }
    }
    let limits = &state.settings.rate_limit;
    if limits.enabled && limits.session_creations > 0 {
        let key = format!("new-session:{addr}");
        check_rate(state, &key, limits.session_creations).await?;
    }

    let token = new_token()?;
    let ttl = state.settings.sessions.ttl();
    let now = state.clock.now();
    let expires_at = now
        + chrono::Duration::from_std(ttl)
            .map_err(|e| ApiError::Internal(format!("session ttl out of range: {e}")))?;
    let session = Session {
        id: session_id(&token),
        created_at: now,
        expires_at,
    };
    let max = state.settings.sessions.max_per_address;
    let quota = SessionQuota {
        owner: addr,
        max: Cap::from_setting(max),
    };
    if !state
        .ports
        .state
        .put_session(&session, ttl, Some(quota))
        .await?
    {
        return Err(ApiError::TooManySessions { limit: max });
    }
    tracing::info!(session = %&session.id[..12], "session created");
    Ok(Opened { token, expires_at })
}
