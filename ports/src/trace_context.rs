//! The trace context a message carries from the process that published it to the one that
//! handles it: the W3C Trace Context headers (`traceparent`, `tracestate`), as text. The
//! queue adapters only carry them (AMQP message headers, the in-process queue's messages);
//! making them from the current span and continuing a trace from them is the telemetry's
//! work (`tirage_runtime::telemetry`), so no port depends on a tracing library.

/// A message's W3C Trace Context; empty when it continues no trace (tracing off, or a
/// message published outside any trace, such as the reconciler's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The header names, as W3C Trace Context spells them.
    pub const TRACEPARENT: &'static str = "traceparent";
    pub const TRACESTATE: &'static str = "tracestate";
    /// Longest value kept from a message: `tracestate` is at most 32 members of at most 256
    /// characters each, but real ones are short, and a header this long is not worth
    /// carrying through every retry. A longer value is dropped, never cut.
    pub const MAX_VALUE_LEN: usize = 512;

    /// A context that continues no trace.
    pub fn none() -> TraceContext {
        TraceContext::default()
    }

    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none() && self.tracestate.is_none()
    }

    /// One header's value (`None` for any name but the two above).
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            Self::TRACEPARENT => self.traceparent.as_deref(),
            Self::TRACESTATE => self.tracestate.as_deref(),
            _ => None,
        }
    }

    /// Sets one header from a message or a propagator; other names, and values too long or
    /// not printable ASCII (as both headers must be), are ignored.
    pub fn set(&mut self, name: &str, value: &str) {
        let sane = value.len() <= Self::MAX_VALUE_LEN
            && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if !sane {
            return;
        }
        match name {
            Self::TRACEPARENT => self.traceparent = Some(value.to_owned()),
            Self::TRACESTATE => self.tracestate = Some(value.to_owned()),
            _ => {}
        }
    }

    /// The headers present, name and value.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (Self::TRACEPARENT, self.traceparent.as_deref()),
            (Self::TRACESTATE, self.tracestate.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_headers_with_sane_values_are_kept() {
        let mut trace = TraceContext::none();
        assert!(trace.is_empty());
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        trace.set("traceparent", parent);
        trace.set("tracestate", "vendor=value");
        trace.set("baggage", "user=1");
        assert_eq!(trace.get("traceparent"), Some(parent));
        assert_eq!(trace.get("baggage"), None);
        assert_eq!(trace.headers().count(), 2);

        let mut odd = TraceContext::none();
        odd.set("traceparent", "line\nbreak");
        odd.set("tracestate", &"a".repeat(TraceContext::MAX_VALUE_LEN + 1));
        assert!(odd.is_empty(), "{odd:?}");
    }
}
