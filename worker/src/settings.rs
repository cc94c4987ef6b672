//! The `[worker]` section of the configuration. Its values come from the one loader
//! ([`tirage_runtime::config`]): the compiled-in `config/default.toml` gives every
//! field, later layers override.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tirage_engine::Limits;

use crate::ssrf::CallbackPolicy;
use tirage_core::cidr::Cidr;
use tirage_ports::Lane;

/// Everything the worker itself needs; the connection settings of its dependencies live in
/// their own sections.
/// How far the clocks of two hosts may disagree for the worker's dated decisions (a batch
/// waiting behind a backlog, an effect's claim gone stale) to hold: NTP keeps hosts well
/// within it.
pub(crate) const HOST_CLOCK_SKEW: Duration = Duration::from_secs(5);

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
    /// How long a job that keeps failing transiently (while Redis and the object store both
    /// answer) is retried, from its first retry, before it is dead-lettered and the photo
    /// fails with `retries_exhausted`. Elapsed time, not a count of attempts: fast failures
    /// and slow ones (timeouts) get the same chance to see their cause go away.
    pub retry_for_ms: u64,
    /// Runs of a photo that may end with their worker dying (killed, out of memory, a
    /// crashing decoder) before the photo fails with `worker_crashed`.
    pub crash_limit: u32,
    /// How long a run's hold on its photo lasts unless renewed (every third of it while the
    /// engine works). A hold that lapses unended is a crashed run; a copy of the job that
    /// arrives meanwhile waits in the delay queue. Also how long a photo whose worker died
    /// mid-resize waits before another worker runs it.
    pub run_hold_ms: u64,
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
    /// The one byte limit of a photo, `[limits] max_file_bytes`, which the API enforces on
    /// upload: filled in from there where the worker is built ([`crate::services`], the
    /// standalone command), never read from `[worker]`.
    #[serde(skip)]
    pub max_source_bytes: u64,
    /// `production` (the default) or `dev`. Only `dev` accepts a well-known placeholder
    /// or a short callback secret.
    pub profile: Profile,
    /// Key of the HMAC-SHA256 signature sent with every callback. No default: empty is
    /// refused, and so are the placeholders in [`KNOWN_PLACEHOLDERS`] outside `dev`.
    pub callback_secret: SecretString,
    /// Lets callbacks reach loopback, private and link-local addresses. Tests and closed
    /// networks only: on a shared network it opens an SSRF hole.
    pub allow_private_callbacks: bool,
    /// The only ports a callback URL may name; empty allows any.
    pub callback_ports: Vec<u16>,
    /// Networks callbacks may reach although the SSRF guard refuses their class (an
    /// internal receiver), as CIDRs.
    pub callback_allow_networks: Vec<Cidr>,
    /// One callback request's timeout.
    pub callback_timeout_ms: u64,
    /// How long a failing callback is retried (with backoff, through the delay queue)
    /// before it is given up; waiting for a slot of its host counts too.
    pub callback_retry_for_ms: u64,
    /// Finalisations and callbacks this worker runs at once (the effects lane's prefetch):
    /// they wait on third parties, so they have their own bound, apart from the resizes'.
    pub effects_concurrency: usize,
    /// Callbacks this worker sends to one host at once; another callback for a host at its
    /// limit waits in the delay queue instead of holding an effects slot.
    pub callback_per_host: usize,
    /// How often the reconciler runs (one at a time per deployment, through a lease).
    pub reconcile_every_ms: u64,
    /// A batch with queued photos and no progress this long gets their jobs published
    /// again; a completed batch whose effects stayed undone this long, its finalisation.
    pub stall_after_ms: u64,
    /// `/readyz` gives each dependency this long to answer (as the API's setting of the
    /// same name).
    pub readiness_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Production,
    Dev,
}

/// Callback secrets that were published (in this repository's history, its examples and
/// its docs): anyone can forge a signature made with one, so outside the `dev` profile the
/// worker refuses to start with it.
pub const KNOWN_PLACEHOLDERS: &[&str] = &[
    "dev-only-callback-secret-change-me",
    "change-me-callback-signing-key",
    "tirage-dev-callback-secret",
    "change-me",
    "changeme",
    "secret",
];

/// Shortest callback secret accepted outside the `dev` profile (`openssl rand -hex 32`
/// gives 64 characters).
pub const MIN_SECRET_CHARS: usize = 16;

#[derive(Debug, thiserror::Error)]
#[error("invalid [worker] setting: {0}")]
pub struct InvalidSettings(pub String);

/// The limits of one photo that the API and the workers share, from `[limits]`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct PhotoLimits {
    /// One photo's bytes: the API refuses a larger upload, the worker a larger original.
    pub max_file_bytes: u64,
}

impl WorkerSettings {
    /// `[worker]` from `layers`, with the byte limit of `[limits]`.
    pub fn from_layers(
        layers: &tirage_runtime::config::Layers,
    ) -> Result<WorkerSettings, tirage_runtime::config::ConfigError> {
        use tirage_runtime::config::load_section_from;
        let settings: WorkerSettings = load_section_from(layers, "worker")?;
        let limits: PhotoLimits = load_section_from(layers, "limits")?;
        Ok(settings.with_limits(limits))
    }

    /// These settings with the limits shared with the API.
    pub fn with_limits(self, limits: PhotoLimits) -> WorkerSettings {
        WorkerSettings {
            max_source_bytes: limits.max_file_bytes,
            ..self
        }
    }

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

    /// The broker prefetch of a lane. Resize: two unacknowledged deliveries per CPU slot
    /// (with one, the CPU idles while a job moves bytes to and from S3 and Redis; a second
    /// keeps it busy; memory stays bounded: at most this many originals are held at once).
    /// Effects: `effects_concurrency`.
    pub fn prefetch(&self, lane: Lane) -> u16 {
        let slots = match lane {
            Lane::Resize => self.effective_concurrency().saturating_mul(2),
            Lane::Effects => self.effects_concurrency,
        };
        u16::try_from(slots).unwrap_or(u16::MAX)
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_pixels: self.max_pixels,
            max_bytes: self.max_source_bytes,
        }
    }

    pub fn validate(&self) -> Result<(), InvalidSettings> {
        if self.max_source_bytes == 0 {
            return Err(InvalidSettings(
                "no byte limit: build the settings with [limits] (WorkerSettings::from_layers)"
                    .into(),
            ));
        }
        if self.crash_limit == 0 {
            return Err(InvalidSettings("crash_limit must be at least 1".into()));
        }
        if self.run_hold_ms < 3 {
            return Err(InvalidSettings("run_hold_ms must be at least 3".into()));
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
        if self.readiness_timeout_ms == 0 {
            return Err(InvalidSettings(
                "readiness_timeout_ms must be at least 1".into(),
            ));
        }
        if self.reconcile_every_ms == 0 || self.stall_after_ms == 0 {
            return Err(InvalidSettings(
                "reconcile_every_ms and stall_after_ms must be > 0".into(),
            ));
        }
        if self.io_timeout_ms == 0 || self.callback_timeout_ms == 0 {
            return Err(InvalidSettings(
                "io_timeout_ms and callback_timeout_ms must be > 0".into(),
            ));
        }
        // An empty key would make every signature forgeable by anyone.
        let secret = self.callback_secret.expose_secret();
        if secret.is_empty() {
            return Err(InvalidSettings(
                "callback_secret must be set (TIRAGE__WORKER__CALLBACK_SECRET; \
                 generate one with `openssl rand -hex 32`)"
                    .into(),
            ));
        }
        if self.profile != Profile::Dev {
            let placeholder = KNOWN_PLACEHOLDERS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(secret.trim()));
            if placeholder || secret.chars().count() < MIN_SECRET_CHARS {
                return Err(InvalidSettings(format!(
                    "callback_secret is a published placeholder or shorter than \
                     {MIN_SECRET_CHARS} characters: anyone could forge callbacks. Set \
                     TIRAGE__WORKER__CALLBACK_SECRET (`openssl rand -hex 32`), or \
                     TIRAGE__WORKER__PROFILE=dev on a development machine"
                )));
            }
        }
        if self.effects_concurrency == 0 || self.callback_per_host == 0 {
            return Err(InvalidSettings(
                "effects_concurrency and callback_per_host must be at least 1".into(),
            ));
        }
        if self.callback_ports.contains(&0) {
            return Err(InvalidSettings("callback_ports may not hold 0".into()));
        }
        Ok(())
    }

    /// What callback URLs may reach.
    pub fn callback_policy(&self) -> CallbackPolicy {
        CallbackPolicy {
            allow_private: self.allow_private_callbacks,
            ports: self.callback_ports.clone(),
            allowed_networks: self.callback_allow_networks.clone(),
        }
    }

    /// How long a run's hold lasts unless renewed.
    pub fn run_hold(&self) -> Duration {
        Duration::from_millis(self.run_hold_ms)
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

    fn defaults() -> WorkerSettings {
        let layers = tirage_runtime::config::Layers::defaults_only();
        WorkerSettings::from_layers(&layers).unwrap()
    }

    /// One byte limit per photo: the API's `[limits] max_file_bytes`, read again by the
    /// worker; settings built without it refuse to start.
    #[test]
    fn the_byte_limit_is_the_apis() {
        let layers = tirage_runtime::config::Layers::defaults_only();
        let limits: PhotoLimits =
            tirage_runtime::config::load_section_from(&layers, "limits").unwrap();
        let s = WorkerSettings {
            callback_secret: SecretString::from("3f1c0a9e6b2d4f8a7c5e1b0d9f2a4c6e"),
            ..defaults()
        };
        assert_eq!(s.max_source_bytes, limits.max_file_bytes);
        s.validate().unwrap();
        let unfilled = WorkerSettings {
            max_source_bytes: 0,
            ..s
        };
        assert!(unfilled.validate().is_err());
    }

    #[test]
    fn the_defaults_ship_no_usable_secret() {
        let s = defaults();
        assert_eq!(s.profile, Profile::Production);
        assert_eq!(s.callback_ports, vec![80, 443]);
        assert!(s.validate().is_err(), "no default secret may pass");
        let s = WorkerSettings {
            callback_secret: SecretString::from("3f1c0a9e6b2d4f8a7c5e1b0d9f2a4c6e"),
            ..s
        };
        s.validate().unwrap();
        assert_eq!(
            usize::from(s.prefetch(Lane::Resize)),
            2 * s.effective_concurrency()
        );
        assert_eq!(
            usize::from(s.prefetch(Lane::Effects)),
            s.effects_concurrency
        );
    }

    #[test]
    fn placeholders_pass_only_in_the_dev_profile_and_empty_never() {
        for placeholder in KNOWN_PLACEHOLDERS.iter().chain(&["short"]) {
            let s = WorkerSettings {
                callback_secret: SecretString::from(*placeholder),
                ..defaults()
            };
            assert!(s.validate().is_err(), "{placeholder}");
            let dev = WorkerSettings {
                profile: Profile::Dev,
                ..s
            };
            dev.validate().unwrap();
        }
        let s = WorkerSettings {
            profile: Profile::Dev,
            callback_secret: SecretString::from(""),
            ..defaults()
        };
        assert!(s.validate().is_err());
    }
}
