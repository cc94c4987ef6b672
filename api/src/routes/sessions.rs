use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, post, web};
use tirage_core::wire::{ErrorBody, SessionCreated};

use crate::auth::SESSION_COOKIE;
use crate::client_addr::client_address;
use crate::error::ApiError;
use crate::state::AppState;
use crate::usecases::sessions::{self, Opened};

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
    let limits = &state.settings.rate_limit;
    let addr = client_address(&req, &limits.trusted_proxies);
    let api_key = req.headers().get(API_KEY_HEADER).map(|v| v.as_bytes());
    let Opened { token, expires_at } = sessions::open(&state, &addr, api_key).await?;

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
