//! Message properties: every message is persistent JSON carrying its attempt number in the
//! `x-tirage-attempt` header; a retried one, how much of its retry budget it has spent in
//! `x-tirage-retry-spent-ms` (a message retried by a version before that header carries
//! when its retries began instead, `x-tirage-retrying-since`, Unix milliseconds, read as
//! the time since then); dead letters add the reason in
//! `x-tirage-dead-reason`. A message published inside a trace carries the W3C
//! `traceparent` and `tracestate` headers, kept through retries and dead-lettering.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use tirage_ports::TraceContext;

const ATTEMPT_HEADER: &str = "x-tirage-attempt";
const REASON_HEADER: &str = "x-tirage-dead-reason";
const RETRY_SPENT_HEADER: &str = "x-tirage-retry-spent-ms";
/// Written by versions before `x-tirage-retry-spent-ms`; still read, so that the retries
/// they left in the delay queues keep their budget across an upgrade.
const RETRYING_SINCE_HEADER: &str = "x-tirage-retrying-since";

/// A persistent JSON message at `attempt`, in the trace `trace` names.
pub fn persistent(attempt: u32, trace: &TraceContext) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        ATTEMPT_HEADER.into(),
        AMQPValue::LongLongInt(i64::from(attempt)),
    );
    for (name, value) in trace.headers() {
        headers.insert(name.into(), AMQPValue::LongString(value.into()));
    }
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_headers(headers)
}

/// `props` with one more header.
fn with_header(props: BasicProperties, name: &str, value: AMQPValue) -> BasicProperties {
    let mut headers = props.headers().clone().unwrap_or_default();
    headers.insert(name.into(), value);
    props.with_headers(headers)
}

/// A persistent JSON message at `attempt`, dead-lettered for `reason`.
pub(super) fn dead(attempt: u32, trace: &TraceContext, reason: &str) -> BasicProperties {
    with_header(
        persistent(attempt, trace),
        REASON_HEADER,
        AMQPValue::LongString(reason.into()),
    )
}

/// A persistent JSON message at `attempt` that has spent `spent` of its retry budget.
pub(super) fn retried(attempt: u32, trace: &TraceContext, spent: Duration) -> BasicProperties {
    let ms = i64::try_from(spent.as_millis()).unwrap_or(i64::MAX);
    with_header(
        persistent(attempt, trace),
        RETRY_SPENT_HEADER,
        AMQPValue::LongLongInt(ms),
    )
}

fn header<'a>(props: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(&ShortString::from(name)))
}

/// An integer header of any integer type (foreign publishers may use any).
fn integer_header(props: &BasicProperties, name: &str) -> Option<i64> {
    Some(match header(props, name)? {
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        _ => return None,
    })
}

/// The attempt a message is at; 1 when the header is missing or not a positive integer.
pub fn attempt_of(props: &BasicProperties) -> u32 {
    integer_header(props, ATTEMPT_HEADER)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(1)
        .max(1)
}

/// How much of its retry budget the message has spent: zero on a message never retried
/// (or a header that is not a non-negative integer); on one retried by an earlier version,
/// the time since its retries began by `now`.
pub fn retry_spent_of(props: &BasicProperties, now: SystemTime) -> Duration {
    let non_negative = |name| {
        integer_header(props, name)
            .and_then(|n| u64::try_from(n).ok())
            .map(Duration::from_millis)
    };
    if let Some(spent) = non_negative(RETRY_SPENT_HEADER) {
        return spent;
    }
    non_negative(RETRYING_SINCE_HEADER)
        .and_then(|since| UNIX_EPOCH.checked_add(since))
        .and_then(|since| now.duration_since(since).ok())
        .unwrap_or_default()
}

/// The trace context a message carries (empty when it has none, or only headers that are
/// not text).
pub fn trace_of(props: &BasicProperties) -> TraceContext {
    let mut trace = TraceContext::none();
    for name in [TraceContext::TRACEPARENT, TraceContext::TRACESTATE] {
        if let Some(value) = text_header(props, name) {
            trace.set(name, &value);
        }
    }
    trace
}

fn text_header(props: &BasicProperties, name: &str) -> Option<String> {
    match header(props, name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Why a dead letter was given up on ("" when the header is missing).
pub fn reason_of(props: &BasicProperties) -> String {
    text_header(props, REASON_HEADER).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &str, ms: i64) -> BasicProperties {
        with_header(
            persistent(2, &TraceContext::none()),
            name,
            AMQPValue::LongLongInt(ms),
        )
    }

    #[test]
    fn a_retry_carries_the_budget_it_spent() {
        let props = retried(3, &TraceContext::none(), Duration::from_millis(4_500));
        assert_eq!(attempt_of(&props), 3);
        assert_eq!(
            retry_spent_of(&props, SystemTime::now()),
            Duration::from_millis(4_500)
        );
        let first = persistent(1, &TraceContext::none());
        assert_eq!(retry_spent_of(&first, SystemTime::now()), Duration::ZERO);
        assert_eq!(
            retry_spent_of(&with(RETRY_SPENT_HEADER, -5), SystemTime::now()),
            Duration::ZERO
        );
    }

    #[test]
    fn a_retry_from_an_earlier_version_has_spent_the_time_since_its_retries_began() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let props = with(RETRYING_SINCE_HEADER, 940_000);
        assert_eq!(retry_spent_of(&props, now), Duration::from_secs(60));
        // A start in the future (clocks apart) has spent nothing.
        let ahead = with(RETRYING_SINCE_HEADER, 1_100_000);
        assert_eq!(retry_spent_of(&ahead, now), Duration::ZERO);
    }
}
