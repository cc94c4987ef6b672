//! Sessions: bearer tokens, their digests, and the extractor every `/v1` handler uses.
//!
//! A token is 256 bits from the operating system's CSPRNG. The state store keeps only its
//! SHA-256 (the session id), so a leaked store holds nothing a reader could replay.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use base64::Engine;
use sha2::{Digest, Sha256};
use tirage_core::model::Batch;
use tirage_ports::{Authorize, Payer, RateDecision, Session, SessionRate};
use uuid::Uuid;

use crate::client_addr::client_address;
use crate::error::ApiError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "tirage_session";
/// Longer than any token we issue; longer inputs are refused before hashing.
const MAX_TOKEN_LEN: usize = 128;

/// A fresh random token, URL-safe base64 of 32 bytes.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("system random source failed: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The session id stored for a token.
pub fn session_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Compares two digests without an early exit, so timing reveals nothing of a key.
pub fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The token of a request: `Authorization: Bearer` first, then the session cookie.
fn token_of(req: &HttpRequest) -> Result<String, ApiError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ApiError::InvalidSession)?;
        let (scheme, token) = value.split_once(' ').ok_or(ApiError::InvalidSession)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::InvalidSession);
        }
        return checked(token.trim());
    }
    match req.cookie(SESSION_COOKIE) {
        Some(cookie) => checked(cookie.value()),
        None => Err(ApiError::MissingCredentials),
    }
}

fn checked(token: &str) -> Result<String, ApiError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::InvalidSession);
    }
    Ok(token.to_owned())
}

/// A request made with a live session. Extracting it slides the session's expiry, counts
/// the request against the session's rate limit and, on routes under a batch, reads that
/// batch: all in one state-store call ([`StateStore::authorize`]). A token the store does
/// not know counts against its client address instead (`rate_limit.unknown_token_requests`):
/// 401 while under that limit, 429 past it.
///
/// [`StateStore::authorize`]: tirage_ports::StateStore::authorize
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub session: Session,
    /// The client address the per-address caps count ([`crate::client_addr`]).
    pub address: String,
    /// The route's `{batch_id}` and that batch as read (`None`: it does not exist), for
    /// [`crate::extract::owned_batch`].
    pub route_batch: Option<(Uuid, Option<Batch>)>,
}

impl Authenticated {
    /// Who pays for the bytes this request makes the service keep.
    pub fn payer(&self) -> Payer<'_> {
        Payer {
            session_id: &self.session.id,
            address: &self.address,
        }
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = token_of(req);
        // An id that does not parse is not read; the handler's path extractor answers 404.
        let batch_id = req
            .match_info()
            .get("batch_id")
            .and_then(|id| Uuid::parse_str(id).ok());
        let address = state
            .as_ref()
            .map(|s| client_address(req, &s.settings.rate_limit.trusted_proxies))
            .unwrap_or_default();
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            let id = session_id(&token?);
            let limits = &state.settings.rate_limit;
            let authorized = state
                .ports
                .state
                .authorize(&Authorize {
                    session_id: &id,
                    ttl: state.settings.sessions.ttl(),
                    rate: limits.enabled.then(|| SessionRate {
                        limit: limits.requests,
                        window: limits.window(),
                    }),
                    batch: batch_id,
                })
                .await?;
            let Some(authorized) = authorized else {
                if limits.enabled && limits.unknown_token_requests > 0 {
                    let key = format!("unknown-token:{address}");
                    check_rate(&state, &key, limits.unknown_token_requests).await?;
                }
                return Err(ApiError::InvalidSession);
            };
            rate_verdict(authorized.rate)?;
            Ok(Authenticated {
                session: authorized.session,
                address,
                route_batch: batch_id.map(|id| (id, authorized.batch)),
            })
        })
    }
}

/// Counts one hit on `key`; 429 with the store's retry delay once past `limit`.
pub async fn check_rate(state: &AppState, key: &str, limit: u32) -> Result<(), ApiError> {
    let decision = state
        .ports
        .state
        .rate_limit(key, limit, state.settings.rate_limit.window())
        .await?;
    rate_verdict(decision)
}

/// Counts a request that does the work of `hits` more (an archive, of a GET per rendition)
/// on the session's own request counter: 429 `rate_limited` once past the session's limit.
pub async fn charge_requests(
    state: &AppState,
    session_id: &str,
    hits: u32,
) -> Result<(), ApiError> {
    let limits = &state.settings.rate_limit;
    if !limits.enabled || hits == 0 {
        return Ok(());
    }
    let rate = SessionRate {
        limit: limits.requests,
        window: limits.window(),
    };
    let decision = state
        .ports
        .state
        .charge_session_requests(session_id, hits, rate)
        .await?;
    rate_verdict(decision)
}

fn rate_verdict(decision: RateDecision) -> Result<(), ApiError> {
    match decision {
        RateDecision::Allowed { .. } => Ok(()),
        RateDecision::Limited { retry_after } => Err(ApiError::RateLimited {
            retry_after_secs: retry_after_secs(retry_after),
        }),
    }
}

/// A limited counter's delay as `Retry-After` says it, in whole seconds: rounded up, so
/// that clients never come back early.
pub fn retry_after_secs(retry_after: std::time::Duration) -> u64 {
    retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_digested() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "32 bytes in unpadded base64");
        let id = session_id(&a);
        assert_eq!(id.len(), 64);
        assert!(!id.contains(&a));
        assert_eq!(id, session_id(&a));
    }

    #[test]
    fn digests_compare_by_value() {
        assert!(digests_equal(&digest(b"k1"), &digest(b"k1")));
        assert!(!digests_equal(&digest(b"k1"), &digest(b"k2")));
    }
}
