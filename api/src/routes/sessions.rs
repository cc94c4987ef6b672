use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::Utc;
use tirage_core::wire::{ErrorBody, SessionCreated};
use tirage_ports::{Cap, Session, SessionQuota};

use crate::auth::{SESSION_COOKIE, check_rate, digest, digests_equal, new_token, session_id};
use crate::client_addr::client_address;
use crate::error::ApiError;
use crate::state::AppState;

pub const API_KEY_HEADER: &str = "x-api-key";

/// Create a session.
///
/// Returns a bearer token and sets it as the `tirage_session` cookie (HttpOnly,
/// SameSite=Lax). When API keys are configured, `X-Api-Key` must hold one of them. One
/// client address may create `rate_limit.session_creations` sessions per window and hold
/// `sessions.max_per_address` created within one session lifetime.
#[utoipa::path(
    tag = "sessions",
    params(("X-Api-Key" = Option<String>, Header, description = "Required when the server has API keys configured")),
    responses(
        (status = 201, description = "Session created", body = SessionCreated),
        (status = 401, description = "Missing or wrong API key (`invalid_api_key`)", body = ErrorBody),
        (status = 429, description = "Too many sessions from this address: created this window (`rate_limited`, with `Retry-After`) or within one session lifetime (`too_many_sessions`)", body = ErrorBody),
        (status = 503, description = "State store unavailable", body = ErrorBody),
    )
)]
#[post("/v1/sessions")]
pub async fn create_session(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !state.api_key_digests.is_empty() {
        let presented = req
            .headers()
            .get(API_KEY_HEADER)
            .map(|v| digest(v.as_bytes()))
            .ok_or(ApiError::InvalidApiKey)?;
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
    let addr = client_address(&req, &limits.trusted_proxies);
    if limits.enabled && limits.session_creations > 0 {
        check_rate(
            &state,
            &format!("new-session:{addr}"),
            limits.session_creations,
        )
        .await?;
    }

    let token = new_token()?;
    let ttl = state.settings.sessions.ttl();
    let now = Utc::now();
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
        owner: &addr,
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

    // No Max-Age: the server slides the expiry, a browser-side deadline would not follow.
    let cookie = Cookie::build(SESSION_COOKIE, token.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.sessions.cookie_secure)
        .finish();
    Ok(HttpResponse::Created()
        .cookie(cookie)
        .json(SessionCreated { token, expires_at }))
}
