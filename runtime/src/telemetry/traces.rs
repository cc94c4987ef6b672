//! The trace export: every process's `tracing` spans (a request, a job and the steps inside
//! them) as OpenTelemetry spans, sent over OTLP/HTTP with protobuf bodies. Configured only
//! by the standard variables, as every OpenTelemetry SDK is, so an operator sets the same
//! ones for Tirage as for the rest of their fleet:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns the
//!   export on; so does `OTEL_TRACES_EXPORTER=otlp` (to `http://localhost:4318`).
//!   `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true` keep it off.
//! - `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (the default; the one built in).
//! - `OTEL_SERVICE_NAME` (else the process's own name), `OTEL_RESOURCE_ATTRIBUTES`,
//!   `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, `OTEL_BSP_*` (the batch's delay,
//!   queue and export timeout), `OTEL_EXPORTER_OTLP_HEADERS` and `…_TIMEOUT`: read by the
//!   SDK itself.
//!
//! Exporting never holds a request or a job: spans queue in memory (bounded by
//! `OTEL_BSP_MAX_QUEUE_SIZE`, dropped beyond it) and a background thread of the SDK sends
//! them; a collector that is down or silent costs that thread its export timeout, nothing
//! else.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;

use super::{BoxedLayer, TelemetryError};

const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
const TRACES_PATH: &str = "/v1/traces";

/// What the environment asks of the trace export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    Off,
    /// Export to this OTLP/HTTP traces URL.
    Otlp {
        endpoint: String,
    },
}

impl Wanted {
    /// Reads the standard variables through `var` (the process environment, or a test's).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Wanted, TelemetryError> {
        let set = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(Wanted::Off);
        }
        let exporter = set("OTEL_TRACES_EXPORTER");
        match exporter.as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(Wanted::Off),
            Some(other) => {
                return Err(TelemetryError::Traces(format!(
                    "OTEL_TRACES_EXPORTER={other:?}: only \"otlp\" or \"none\" is built in"
                )));
            }
        }
        let endpoint = match (
            set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            set("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            // A signal's own endpoint is used as given; the generic one gets the signal's path.
            (Some(traces), _) => traces,
            (None, Some(base)) => format!("{}{TRACES_PATH}", base.trim_end_matches('/')),
            (None, None) if exporter.is_some() => format!("{DEFAULT_ENDPOINT}{TRACES_PATH}"),
            (None, None) => return Ok(Wanted::Off),
        };
        let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|| "http/protobuf".to_owned());
        if protocol != "http/protobuf" {
            return Err(TelemetryError::Traces(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={protocol:?}: only \"http/protobuf\" is built in"
            )));
        }
        Ok(Wanted::Otlp { endpoint })
    }
}

/// The running export: the SDK's provider, whose batch processor owns the sending thread.
pub struct Traces {
    provider: SdkTracerProvider,
    endpoint: String,
}

impl Traces {
    /// The export the process environment asks for, or `None` when it asks for none.
    pub fn from_env(service: &str) -> Result<Option<Traces>, TelemetryError> {
        match Wanted::from_vars(|name| std::env::var(name).ok())? {
            Wanted::Off => Ok(None),
            Wanted::Otlp { endpoint } => Traces::start(service, endpoint).map(Some),
        }
    }

    fn start(service: &str, endpoint: String) -> Result<Traces, TelemetryError> {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(|e| TelemetryError::Traces(format!("cannot build the OTLP exporter: {e}")))?;
        // The detectors read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the process's
        // own name is only the default.
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(service.to_owned());
        }
        let resource = resource
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Traces { provider, endpoint })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The subscriber layer that turns spans into OpenTelemetry spans: every span at `info`
    /// or above (requests, jobs and their steps; the libraries' debug spans stay out), and
    /// warnings and errors as events of their span (an error marks it failed).
    pub(super) fn layer(&self) -> BoxedLayer {
        let tracer = self.provider.tracer("tirage");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(filter_fn(|meta| {
                let most_verbose = if meta.is_span() {
                    Level::INFO
                } else {
                    Level::WARN
                };
                *meta.level() <= most_verbose
            }))
            .boxed()
    }

    /// Sends what is still buffered, then stops the sending thread.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            // The subscriber may be the one that would log it; stderr always works.
            eprintln!("traces: the last spans were not exported: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(vars: &[(&str, &str)]) -> Result<Wanted, TelemetryError> {
        Wanted::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn endpoint(url: &str) -> Wanted {
        Wanted::Otlp {
            endpoint: url.to_owned(),
        }
    }

    #[test]
    fn off_unless_an_endpoint_or_the_exporter_is_named() {
        assert_eq!(wanted(&[]).ok(), Some(Wanted::Off));
        assert_eq!(
            wanted(&[("OTEL_SERVICE_NAME", "x")]).ok(),
            Some(Wanted::Off)
        );
        assert_eq!(
            wanted(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]).ok(),
            Some(endpoint("http://c:4318/v1/traces"))
        );
        assert_eq!(
            wanted(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9/in"),
            ])
            .ok(),
            Some(endpoint("http://t:9/in"))
        );
        assert_eq!(
            wanted(&[("OTEL_TRACES_EXPORTER", "otlp")]).ok(),
            Some(endpoint("http://localhost:4318/v1/traces"))
        );
    }

    #[test]
    fn disabled_or_none_wins_over_an_endpoint() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert_eq!(
            wanted(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")]).ok(),
            Some(Wanted::Off)
        );
        assert_eq!(
            wanted(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]).ok(),
            Some(Wanted::Off)
        );
    }

    #[test]
    fn a_protocol_or_exporter_not_built_in_is_refused() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317");
        for refused in [
            vec![endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
            vec![
                endpoint,
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ],
            vec![endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")],
        ] {
            assert!(
                matches!(wanted(&refused), Err(TelemetryError::Traces(_))),
                "{refused:?}"
            );
        }
        assert!(wanted(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).is_ok());
    }
}
