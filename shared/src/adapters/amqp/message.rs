//! Message properties: every message is persistent JSON carrying its attempt number in the
//! `x-tirage-attempt` header; dead letters add the reason in `x-tirage-dead-reason`.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};

const ATTEMPT_HEADER: &str = "x-tirage-attempt";
const REASON_HEADER: &str = "x-tirage-dead-reason";

/// A persistent JSON message at `attempt`.
pub(crate) fn persistent(attempt: u32) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        ATTEMPT_HEADER.into(),
        AMQPValue::LongLongInt(i64::from(attempt)),
    );
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_headers(headers)
}

/// A persistent JSON message at `attempt`, dead-lettered for `reason`.
pub(super) fn dead(attempt: u32, reason: &str) -> BasicProperties {
    let props = persistent(attempt);
    match props.headers().clone() {
        Some(mut headers) => {
            headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
            props.with_headers(headers)
        }
        None => props,
    }
}

fn header<'a>(props: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(&ShortString::from(name)))
}

/// The attempt a message is at; 1 when the header is missing or not a positive integer
/// (foreign publishers may use any integer type).
pub(crate) fn attempt_of(props: &BasicProperties) -> u32 {
    let n = match header(props, ATTEMPT_HEADER) {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortUInt(n)) => i64::from(*n),
        _ => 1,
    };
    u32::try_from(n).unwrap_or(1).max(1)
}

/// Why a dead letter was given up on ("" when the header is missing).
#[cfg(feature = "testing")]
pub(crate) fn reason_of(props: &BasicProperties) -> String {
    match header(props, REASON_HEADER) {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.as_str().to_owned(),
        _ => String::new(),
    }
}
