//! A trace across processes: the current span's context written as W3C Trace Context
//! headers into what a process hands on (a job it publishes), and a span continued from the
//! headers it received (a request's, a delivery's). With the export off, spans carry no
//! OpenTelemetry context: nothing is written and nothing continued.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tirage_ports::TraceContext;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The current span's trace context, to publish with a job.
pub fn current() -> TraceContext {
    of(&tracing::Span::current())
}

/// `span`'s trace context.
pub fn of(span: &tracing::Span) -> TraceContext {
    let mut trace = TraceContext::none();
    TraceContextPropagator::new().inject_context(&span.context(), &mut Carrier(&mut trace));
    trace
}

/// Makes `span` a child of the span `trace` names, when it names a valid one. Call before
/// `span` is first entered.
pub fn continue_trace(span: &tracing::Span, trace: &TraceContext) {
    if trace.is_empty() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Reader(trace));
    if parent.span().span_context().is_valid() {
        // Fails only when the span is disabled (the export is off): nothing to continue.
        let _ = span.set_parent(parent);
    }
}

struct Carrier<'a>(&'a mut TraceContext);

impl Injector for Carrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.set(key, &value);
    }
}

struct Reader<'a>(&'a TraceContext);

impl Extractor for Reader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.headers().map(|(name, _)| name).collect()
    }
}
