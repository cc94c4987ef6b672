//! Logs and traces: one `tracing` subscriber, installed the same way by every process. Logs
//! are JSON lines in production (with the current span — a request's or a job's ids — on
//! every line), human-readable text when asked. Traces are the same spans exported as
//! OpenTelemetry spans over OTLP, off unless the standard `OTEL_*` variables ask for them
//! ([`traces`]); [`propagation`] carries a trace across processes in the jobs' headers.

pub mod propagation;
pub mod traces;

use serde::Deserialize;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub use traces::Traces;

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
    #[error("traces: {0}")]
    Traces(String),
}

/// What [`init`] installed; keep it until the process ends and call
/// [`Telemetry::shutdown`] then, so the last spans are exported.
#[must_use = "the traces are flushed by Telemetry::shutdown"]
pub struct Telemetry {
    traces: Option<Traces>,
}

impl Telemetry {
    /// Exports the spans still buffered (bounded by `OTEL_BSP_EXPORT_TIMEOUT`).
    pub fn shutdown(self) {
        if let Some(traces) = self.traces {
            traces.shutdown();
        }
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber: the log lines, and the trace export when the environment
/// configures one (`service` names the process when `OTEL_SERVICE_NAME` does not). Call
/// once per process; a second call fails with [`TelemetryError::Install`] and leaves the
/// first in place.
pub fn init(
    settings: &LogSettings,
    output: LogOutput,
    service: &str,
) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .map_err(|e| TelemetryError::Level {
            level: settings.level.clone(),
            message: e.to_string(),
        })?;
    let writer = match output {
        LogOutput::Stdout => BoxMakeWriter::new(std::io::stdout),
        LogOutput::Stderr => BoxMakeWriter::new(std::io::stderr),
    };
    let logs: BoxedLayer = match settings.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    };
    let traces = Traces::from_env(service)?;
    let mut layers = vec![logs];
    if let Some(traces) = &traces {
        layers.push(traces.layer());
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| TelemetryError::Install(e.to_string()))?;
    if let Some(traces) = &traces {
        tracing::info!(endpoint = %traces.endpoint(), "exporting traces over OTLP");
    }
    Ok(Telemetry { traces })
}
