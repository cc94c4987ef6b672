//! The API's settings: its own sections (`[api]`, `[limits]`, `[sessions]`, `[rate_limit]`),
//! the `[log]` section and the shared services, read by the one configuration loader
//! ([`tirage_runtime::config`]). Every limit the API enforces is here.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tirage_ports::{ByteCap, StorageCaps};
use tirage_runtime::ServiceSettings;
use tirage_runtime::config::{self, Layers};
use tirage_runtime::telemetry::LogSettings;

use crate::client_addr::{self, Cidr};
use crate::signed_urls;

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
    /// How often an event stream re-reads its batch when no progress announcement came (a
    /// safety net: announcements wake streams at once).
    pub events_poll_ms: u64,
    /// How long one event stream lives before the client has to reconnect.
    pub events_max_secs: u64,
    /// Comment lines sent this often keep idle proxies from cutting an event stream; each
    /// also renews the stream's lease.
    pub events_keepalive_secs: u64,
    /// Event streams one session may hold open at once, across every replica.
    pub events_per_session: u32,
    /// Batch archives one session may download at once, across every replica (each reads
    /// every rendition of its batch).
    pub archives_per_session: u32,
    /// Event streams the sessions of one client address may hold open at once, together,
    /// across every replica (0 = unlimited).
    pub events_per_address: u32,
    /// Batch archives the sessions of one client address may download at once, together (0
    /// = unlimited).
    pub archives_per_address: u32,
    /// How long an archive's slot lasts unless renewed (every third of it while its bytes
    /// flow): a replica that dies mid-archive gives the slot back this much later.
    pub archive_lease_secs: u64,
    /// How long an idle client connection is kept: above the reverse proxy's idle timeout
    /// for its upstream connections, so the proxy, never the replica, closes them.
    pub keep_alive_secs: u64,
    /// Multipart uploads this replica streams at once; more are refused with 503
    /// `server_busy` (each holds up to one 8 MiB object-store part in memory).
    pub max_concurrent_uploads: usize,
    /// Of those, the most one session may hold at once.
    pub uploads_per_session: usize,
    /// The slowest multipart body accepted: each `upload_rate_window_secs` must bring this
    /// many bytes per second, or the upload ends with 408 `body_too_slow` and frees its slot
    /// ([`crate::pace`]). 0 enforces no rate.
    pub upload_min_bytes_per_sec: u64,
    pub upload_rate_window_secs: u64,
    /// `Retry-After` of a `server_busy` answer.
    pub busy_retry_after_secs: u64,
    /// `/readyz` gives each dependency this long to answer.
    pub readiness_timeout_ms: u64,
    /// Confirmed publishes awaited at once for one upload request.
    pub publish_concurrency: usize,
    /// Whether photo listings carry, for each rendition, a signed URL that needs no session
    /// and that a CDN may cache until the batch expires ([`crate::signed_urls`]).
    pub signed_rendition_urls: bool,
    /// The key signing those URLs, the same on every replica (at least 32 characters).
    pub rendition_url_key: SecretString,
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
    /// Photos one batch may hold, counting presigned uploads handed out and not yet
    /// completed (nor expired).
    pub max_photos_per_batch: u64,
    /// Open batches one session may have at once (0 = unlimited).
    pub max_open_batches_per_session: u32,
    /// Batches one session may create within an hour, whatever became of them (0 =
    /// unlimited).
    pub batches_per_session_per_hour: u32,
    /// Batches the sessions of one client address may create within an hour, together (0 =
    /// unlimited).
    pub batches_per_address_per_hour: u32,
    /// Bytes one session may make the service keep at once, originals and renditions,
    /// until the sweep removes them (0 = unlimited; [`tirage_ports::Storage`]).
    pub stored_bytes_per_session: u64,
    /// The same across every session of one client address (0 = unlimited).
    pub stored_bytes_per_address: u64,
    /// Largest JSON request body.
    pub max_json_bytes: usize,
    /// Most presigned uploads one request may ask for.
    pub max_uploads_per_request: usize,
    pub page_default: usize,
    pub page_max: usize,
    /// How long a batch (state and objects) lives.
    pub batch_ttl_secs: u64,
    /// After a refused upload (503, 409, 413, ...), how much more of the request body is
    /// read and discarded so the client gets the answer instead of a reset connection.
    pub drain_max_bytes: u64,
}

impl LimitSettings {
    /// The caps on the bytes one charge may bring a session and its client address to.
    pub fn storage_caps(&self) -> StorageCaps {
        StorageCaps {
            per_session: ByteCap::from_setting(self.stored_bytes_per_session),
            per_address: ByteCap::from_setting(self.stored_bytes_per_address),
        }
    }
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
    /// Sessions one client address may create within one session TTL (0 = unlimited).
    pub max_per_address: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Requests one session may make per window.
    pub requests: u32,
    pub window_secs: u64,
    /// Sessions one client address may create per window (0 = unlimited).
    pub session_creations: u32,
    /// Requests with an unknown or expired session token one client address may make per
    /// window (0 = unlimited); past it they are answered 429 instead of 401.
    pub unknown_token_requests: u32,
    /// Peers whose `X-Real-IP` names the client (the reverse proxies); every other peer is
    /// the client itself. `X-Forwarded-For` is never read ([`crate::client_addr`]).
    #[serde(default = "client_addr::loopback")]
    pub trusted_proxies: Vec<Cidr>,
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
        if self.api.events_per_session == 0
            || self.api.archives_per_session == 0
            || self.api.max_concurrent_uploads == 0
            || self.api.uploads_per_session == 0
        {
            return bad(
                "api.events_per_session, api.archives_per_session, api.max_concurrent_uploads and api.uploads_per_session must be > 0",
            );
        }
        if self.api.signed_rendition_urls
            && self.api.rendition_url_key.expose_secret().len() < signed_urls::MIN_KEY_LEN
        {
            return bad(
                "api.signed_rendition_urls needs api.rendition_url_key of at least 32 \
                 characters (`openssl rand -hex 32`), the same on every replica",
            );
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
    pub fn events_keepalive(&self) -> Duration {
        Duration::from_secs(self.events_keepalive_secs.max(1))
    }
    /// An archive's slot, unless renewed.
    pub fn archive_lease(&self) -> Duration {
        Duration::from_secs(self.archive_lease_secs.max(1))
    }
    /// A stream's lease: three keep-alives, so one late renewal does not lose it.
    pub fn events_lease(&self) -> Duration {
        self.events_keepalive() * 3
    }
    /// What each window of a multipart body must bring; `None` when no rate is enforced.
    pub fn upload_min_rate(&self) -> Option<crate::pace::MinRate> {
        crate::pace::MinRate::from_settings(
            self.upload_min_bytes_per_sec,
            self.upload_rate_window_secs,
        )
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
    fn signed_rendition_urls_need_a_long_key() {
        let mut s = Settings::load_from(&Layers::defaults_only()).unwrap();
        assert!(!s.api.signed_rendition_urls, "off unless configured");
        s.api.signed_rendition_urls = true;
        assert!(s.check().is_err(), "no key ships");
        s.api.rendition_url_key = "short".to_owned().into();
        assert!(s.check().is_err());
        s.api.rendition_url_key = "k".repeat(signed_urls::MIN_KEY_LEN).into();
        assert!(s.check().is_ok());
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
