//! When a request is tried again (network errors, 5xx, 429) and how long to wait first:
//! the server's `Retry-After` when it sends one, else the shared exponential backoff.

use std::time::Duration;

use reqwest::{Response, StatusCode, header};
use tirage_core::backoff::Backoff;

/// How hard to try before giving up on a request.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled on each further one, up to `cap`.
    pub base: Duration,
    pub cap: Duration,
    /// The longest `Retry-After` we agree to wait.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based), by the one backoff rule Tirage
    /// retries with.
    pub fn backoff(&self, attempt: u32) -> Duration {
        Backoff::new(self.base, self.cap).delay(attempt)
    }

    /// The wait after an answer that is retried: its `Retry-After` (up to
    /// `max_retry_after`) when present, else [`RetryPolicy::backoff`].
    pub fn wait_after(&self, response: &Response, attempt: u32) -> Duration {
        retry_after(response)
            .map(|d| d.min(self.max_retry_after))
            .unwrap_or_else(|| self.backoff(attempt))
    }
}

/// Whether an error status is worth another attempt.
pub fn retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// Seconds from a `Retry-After` header (the delta-seconds form; dates are rare enough to
/// fall back to our own backoff).
fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_capped() {
        let p = RetryPolicy::default();
        for attempt in 1..30 {
            let d = p.backoff(attempt);
            assert!(d <= p.cap, "attempt {attempt}: {d:?}");
        }
        let first = p.backoff(1);
        assert!(first >= p.base.mul_f64(0.8) && first <= p.base);
        assert!(p.backoff(5) >= (p.base * 16).mul_f64(0.8));
    }

    #[test]
    fn server_errors_and_429_are_retried_client_errors_are_not() {
        assert!(retryable(StatusCode::SERVICE_UNAVAILABLE));
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(!retryable(StatusCode::UNPROCESSABLE_ENTITY));
        assert!(!retryable(StatusCode::NOT_FOUND));
    }
}
