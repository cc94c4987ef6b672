//! The `[worker]` section of the configuration. Its values come from the one loader
//! ([`tirage_shared::runtime::config`]): the compiled-in `config/default.toml` gives every
//! field, later layers override.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tirage_engine::Limits;

/// Everything the worker itself needs; the connection settings of its dependencies live in
/// their own sections.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Interface of the small HTTP port (`/healthz`, `/readyz`, `/metrics`).
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// Resizes at once (the size of the CPU pool); the broker prefetch is twice this, so
    /// that one job's download, uploads and recording overlap another's resize. 0 means
    /// one per core.
    pub concurrency: usize,
    /// Attempts of a job that keeps failing transiently before it is dead-lettered and the
    /// photo fails with `retries_exhausted`.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled on every further attempt, up to the cap.
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    /// Longest any single call to Redis, S3 or the broker may take before it counts as a
    /// transient failure.
    pub io_timeout_ms: u64,
    /// On SIGTERM, how long in-flight jobs may run before they are put back on the queue.
    pub shutdown_grace_ms: u64,
    /// Backoff between attempts to consume again after the broker went away.
    pub reconnect_base_ms: u64,
    pub reconnect_cap_ms: u64,
    /// Engine limits, checked before any pixel is decoded.
    pub max_pixels: u64,
    pub max_source_bytes: u64,
    /// Key of the HMAC-SHA256 signature sent with every callback.
    pub callback_secret: SecretString,
    /// Lets callbacks reach loopback, private and link-local addresses. Tests and closed
    /// networks only: on a shared network it opens an SSRF hole.
    pub allow_private_callbacks: bool,
    /// One callback request's timeout.
    pub callback_timeout_ms: u64,
    /// How long a failing callback is retried (with backoff) before it is given up.
    pub callback_retry_for_ms: u64,
    /// Sleeps this long inside every resize, on the CPU pool. A test and benchmark aid
    /// (it makes "kill the worker mid-job" deterministic); keep it 0 in production.
    pub job_delay_ms: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid [worker] setting: {0}")]
pub struct InvalidSettings(pub String);

impl WorkerSettings {
    /// The concurrency actually used: the setting, or the number of cores.
    pub fn effective_concurrency(&self) -> usize {
        if self.concurrency > 0 {
            self.concurrency
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }

    /// The broker prefetch: two unacknowledged deliveries per CPU slot. With one, the CPU
    /// idles while a job moves bytes to and from S3 and Redis (and while a finalisation
    /// retries a callback); a second keeps it busy. Memory stays bounded: at most this
    /// many originals are held at once.
    pub fn prefetch(&self) -> u16 {
        u16::try_from(self.effective_concurrency().saturating_mul(2)).unwrap_or(u16::MAX)
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_pixels: self.max_pixels,
            max_bytes: self.max_source_bytes,
        }
    }

    pub fn validate(&self) -> Result<(), InvalidSettings> {
        if self.max_attempts == 0 {
            return Err(InvalidSettings("max_attempts must be at least 1".into()));
        }
        if self.retry_base_ms == 0 || self.retry_cap_ms < self.retry_base_ms {
            return Err(InvalidSettings(
                "retry_base_ms must be > 0 and retry_cap_ms >= retry_base_ms".into(),
            ));
        }
        if self.reconnect_base_ms == 0 || self.reconnect_cap_ms < self.reconnect_base_ms {
            return Err(InvalidSettings(
                "reconnect_base_ms must be > 0 and reconnect_cap_ms >= reconnect_base_ms".into(),
            ));
        }
        if self.io_timeout_ms == 0 || self.callback_timeout_ms == 0 {
            return Err(InvalidSettings(
                "io_timeout_ms and callback_timeout_ms must be > 0".into(),
            ));
        }
        // An empty key would make every signature forgeable by anyone.
        if self.callback_secret.expose_secret().is_empty() {
            return Err(InvalidSettings(
                "callback_secret must be set (TIRAGE__WORKER__CALLBACK_SECRET)".into(),
            ));
        }
        Ok(())
    }

    pub fn io_timeout(&self) -> Duration {
        Duration::from_millis(self.io_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_but_an_empty_secret_is_refused() {
        let layers = tirage_shared::runtime::config::Layers::defaults_only();
        let s: WorkerSettings =
            tirage_shared::runtime::config::load_section_from(&layers, "worker").unwrap();
        s.validate().unwrap();
        assert_eq!(usize::from(s.prefetch()), 2 * s.effective_concurrency());
        let s = WorkerSettings {
            callback_secret: SecretString::from(""),
            ..s
        };
        assert!(s.validate().is_err());
    }
}
