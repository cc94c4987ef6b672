//! The API's settings: its own sections (`[api]`, `[limits]`, `[sessions]`, `[rate_limit]`),
//! the `[log]` section and the shared services, read by the one configuration loader
//! ([`tirage_shared::runtime::config`]). Every limit the API enforces is here.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use tirage_shared::runtime::ServiceSettings;
use tirage_shared::runtime::config::{self, Layers};
use tirage_shared::runtime::telemetry::LogSettings;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub api: ApiSettings,
    pub limits: LimitSettings,
    pub sessions: SessionSettings,
    pub rate_limit: RateLimitSettings,
    pub log: LogSettings,
    /// `[redis]`, `[amqp]` and `[s3]`, deserialized straight into the adapters' settings.
    #[serde(flatten)]
    pub services: ServiceSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// On SIGTERM, how long in-flight requests get to finish.
    pub shutdown_timeout_secs: u64,
    /// `stream` (the API sends the rendition bytes) or `redirect` (a 307 to a presigned URL).
    pub renditions: RenditionDelivery,
    /// Lifetime of presigned upload and download URLs.
    pub presign_ttl_secs: u64,
    /// How often an event stream polls the batch state.
    pub events_poll_ms: u64,
    /// How long one event stream lives before the client has to reconnect.
    pub events_max_secs: u64,
    /// Comment lines sent this often keep idle proxies from cutting an event stream.
    pub events_keepalive_secs: u64,
    /// `/readyz` gives each dependency this long to answer.
    pub readiness_timeout_ms: u64,
    /// Confirmed publishes awaited at once for one upload request.
    pub publish_concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RenditionDelivery {
    Stream,
    Redirect,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// Largest accepted photo (one multipart part, or one presigned upload), in bytes.
    pub max_file_bytes: u64,
    pub max_photos_per_batch: u64,
    /// Largest JSON request body.
    pub max_json_bytes: usize,
    /// Most presigned uploads one request may ask for.
    pub max_uploads_per_request: usize,
    pub page_default: usize,
    pub page_max: usize,
    /// How long a batch (state and objects) lives.
    pub batch_ttl_secs: u64,
    /// After a refused part (413/409), how much more of the request body is read and
    /// discarded so the client gets the answer instead of a reset connection.
    pub drain_max_bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    /// Sliding: every authenticated call pushes expiry to now + ttl.
    pub ttl_secs: u64,
    /// When non-empty, creating a session needs one of these in `X-Api-Key`.
    #[serde(default)]
    pub api_keys: Vec<SecretString>,
    /// Mark the cookie `Secure` (set it when nginx terminates TLS).
    pub cookie_secure: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Requests one session may make per window.
    pub requests: u32,
    pub window_secs: u64,
    /// Sessions one client address may create per window (0 = unlimited).
    pub session_creations: u32,
    /// Take the client address from `X-Forwarded-For`/`Forwarded` (only behind nginx,
    /// which sets it); otherwise from the TCP peer.
    pub trust_forwarded_for: bool,
}

impl Settings {
    /// The configuration of this process, from every layer.
    pub fn load() -> Result<Settings, SettingsError> {
        Self::load_from(&Layers::process())
    }

    /// The configuration from the given layers, checked.
    pub fn load_from(layers: &Layers) -> Result<Settings, SettingsError> {
        let settings: Settings = config::load_layers(layers)?;
        settings.check()?;
        Ok(settings)
    }

    /// Rejects values that would make the API misbehave rather than fail a request.
    pub fn check(&self) -> Result<(), SettingsError> {
        let bad = |what: &str| Err(SettingsError::Invalid(what.to_owned()));
        if self.limits.page_default == 0 || self.limits.page_default > self.limits.page_max {
            return bad("limits.page_default must be within 1..=limits.page_max");
        }
        if self.limits.max_file_bytes == 0 || self.limits.max_photos_per_batch == 0 {
            return bad("limits.max_file_bytes and limits.max_photos_per_batch must be > 0");
        }
        if self.sessions.ttl_secs == 0 || self.limits.batch_ttl_secs == 0 {
            return bad("sessions.ttl_secs and limits.batch_ttl_secs must be > 0");
        }
        if self.rate_limit.enabled
            && (self.rate_limit.requests == 0 || self.rate_limit.window_secs == 0)
        {
            return bad("rate_limit.requests and rate_limit.window_secs must be > 0");
        }
        if self.api.events_poll_ms == 0 || self.api.publish_concurrency == 0 {
            return bad("api.events_poll_ms and api.publish_concurrency must be > 0");
        }
        Ok(())
    }
}

impl ApiSettings {
    pub fn presign_ttl(&self) -> Duration {
        Duration::from_secs(self.presign_ttl_secs)
    }
    pub fn events_poll(&self) -> Duration {
        Duration::from_millis(self.events_poll_ms)
    }
    pub fn readiness_timeout(&self) -> Duration {
        Duration::from_millis(self.readiness_timeout_ms)
    }
}

impl SessionSettings {
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs)
    }
}

impl RateLimitSettings {
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_match_the_contract() {
        let s = Settings::load_from(&Layers::defaults_only()).unwrap();
        assert_eq!(s.limits.max_file_bytes, 50 * 1024 * 1024);
        assert_eq!(s.limits.max_photos_per_batch, 5000);
        assert_eq!(s.sessions.ttl_secs, 24 * 3600);
        assert!(s.sessions.api_keys.is_empty());
        assert_eq!(s.services.amqp.queue_prefix, "tirage");
    }

    #[test]
    fn a_file_overrides_the_defaults_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("extra.toml");
        std::fs::write(
            &path,
            "[limits]\nmax_photos_per_batch = 7\n[redis]\nkey_prefix = \"x:\"\n",
        )
        .unwrap();
        let layers = Layers {
            extra_file: Some(path.clone()),
            ..Layers::defaults_only()
        };
        let s = Settings::load_from(&layers).unwrap();
        assert_eq!(s.limits.max_photos_per_batch, 7);
        assert_eq!(s.limits.page_max, 1000);
        assert_eq!(s.services.redis.key_prefix, "x:");

        std::fs::write(&path, "[limits]\npage_default = 0\n").unwrap();
        assert!(matches!(
            Settings::load_from(&layers),
            Err(SettingsError::Invalid(_))
        ));
    }
}
