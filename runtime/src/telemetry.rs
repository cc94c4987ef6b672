//! Logs: one `tracing` subscriber, installed the same way by every process. JSON lines in
//! production (with the current span — a request's or a job's ids — on every line),
//! human-readable text when asked.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// The `[log]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// An `EnvFilter` directive such as `info` or `tirage_api=debug,info`; `RUST_LOG` wins.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Where log lines go. Servers log to stdout; `tirage standalone` keeps stdout for what it
/// tells the person who started it and logs to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    Stdout,
    Stderr,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log level {level:?}: {message}")]
    Level { level: String, message: String },
    #[error("cannot install the log subscriber: {0}")]
    Install(String),
}

/// Installs the global subscriber. Call once per process; a second call fails with
/// [`TelemetryError::Install`] and leaves the first in place.
pub fn init(settings: &LogSettings, output: LogOutput) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .map_err(|e| TelemetryError::Level {
            level: settings.level.clone(),
            message: e.to_string(),
        })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (settings.format, output) {
        (LogFormat::Json, LogOutput::Stdout) => json(builder.with_writer(std::io::stdout)),
        (LogFormat::Json, LogOutput::Stderr) => json(builder.with_writer(std::io::stderr)),
        (LogFormat::Pretty, LogOutput::Stdout) => builder.with_writer(std::io::stdout).try_init(),
        (LogFormat::Pretty, LogOutput::Stderr) => builder.with_writer(std::io::stderr).try_init(),
    };
    result.map_err(|e| TelemetryError::Install(e.to_string()))
}

type Builder<W> = tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format,
    EnvFilter,
    W,
>;

fn json<W>(builder: Builder<W>) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    builder
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .try_init()
}
