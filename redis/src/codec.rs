//! What the store reads and writes: JSON values, the scripts' replies, and Redis errors
//! mapped to [`StateError`].

use std::time::Duration;

use chrono::Utc;

use tirage_core::model::{Batch, BatchState, PhotoOutcome, PhotoRecord};
use tirage_ports::records::apply_outcome;
use tirage_ports::{RateDecision, Session, StateError};

/// The batch hash fields a batch is rebuilt from, in the order every script returns them
/// (the scripts spell them out literally; a unit test keeps the two in step).
pub(super) const BATCH_FIELDS: [&str; 5] = ["meta", "state", "total", "done", "failed"];

pub(super) fn unavailable(e: impl std::fmt::Display) -> StateError {
    StateError::Unavailable(e.to_string())
}

pub(super) fn redis_error(e: redis::RedisError) -> StateError {
    if e.kind() == redis::ErrorKind::UnexpectedReturnType {
        StateError::Corrupt(e.to_string())
    } else if is_out_of_memory(&e) {
        StateError::Full(format!(
            "Redis refuses writes at its maxmemory; give it more memory, or wait for batches \
             to expire: {e}"
        ))
    } else {
        // I/O, timeouts, refused or dropped connections, server busy or loading: transient.
        StateError::Unavailable(e.to_string())
    }
}

/// Redis's answer to a write at `maxmemory` under `noeviction`: `OOM command not allowed
/// when used memory > 'maxmemory'`, as the reply's code, or inside a script's or a
/// pipeline's error.
fn is_out_of_memory(e: &redis::RedisError) -> bool {
    e.code() == Some("OOM") || e.to_string().contains("not allowed when used memory")
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt(format!("{what}: {e}"))
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(
    what: &str,
    json: &str,
) -> Result<T, StateError> {
    serde_json::from_str(json).map_err(|e| corrupt(what, e))
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StateError> {
    serde_json::to_string(value).map_err(|e| corrupt("serialise", e))
}

/// A duration as Redis expiries take it: whole milliseconds, at least 1 (0 is an error).
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Rebuilds a batch from the [`BATCH_FIELDS`] a script or `HMGET` returned.
pub(super) fn batch_from(fields: &[String]) -> Result<Batch, StateError> {
    let [meta, state, total, done, failed] = fields else {
        return Err(StateError::Corrupt(format!(
            "batch reply has {} fields",
            fields.len()
        )));
    };
    let mut batch: Batch = parse("batch", meta)?;
    batch.state = match state.as_str() {
        "open" => BatchState::Open,
        "processing" => BatchState::Processing,
        "completed" => BatchState::Completed,
        other => return Err(StateError::Corrupt(format!("batch state {other:?}"))),
    };
    let count = |s: &str| s.parse::<u64>().map_err(|e| corrupt("batch counter", e));
    batch.total = count(total)?;
    batch.done = count(done)?;
    batch.failed = count(failed)?;
    Ok(batch)
}

/// A photo from its queued record and its outcome (`""` while it has none).
pub(super) fn photo_from(record: &str, outcome: &str) -> Result<PhotoRecord, StateError> {
    let mut photo: PhotoRecord = parse("photo", record)?;
    if !outcome.is_empty() {
        apply_outcome(&mut photo, &parse::<PhotoOutcome>("outcome", outcome)?);
    }
    Ok(photo)
}

/// A script reply `[status, completed_now, batch fields…]`.
pub(super) fn status_reply(reply: &[String]) -> Result<(&str, bool, Option<Batch>), StateError> {
    let status = reply.first().map(String::as_str).unwrap_or_default();
    match reply {
        [_, now, fields @ ..] if !fields.is_empty() => {
            Ok((status, now == "1", Some(batch_from(fields)?)))
        }
        _ => Ok((status, false, None)),
    }
}

/// The `list_photos.lua` reply `['ok', length, (record, outcome)…]` as the order's length
/// and the page's photos; pairs whose record vanished are skipped.
pub(super) fn page_reply(reply: &[String]) -> Result<(usize, Vec<PhotoRecord>), StateError> {
    let (len, pairs) = match reply {
        [status, len, pairs @ ..] if status == "ok" => (len, pairs),
        [status] if status == "not_found" => return Err(StateError::NotFound),
        _ => return Err(StateError::Corrupt("list reply".into())),
    };
    let len: usize = len.parse().map_err(|e| corrupt("list length", e))?;
    let photos = pairs
        .chunks(2)
        .filter(|pair| pair.first().is_some_and(|r| !r.is_empty()))
        .map(|pair| match pair {
            [record, outcome] => photo_from(record, outcome),
            _ => Err(StateError::Corrupt("list pair".into())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((len, photos))
}

/// A stored session as read after its expiry was pushed to now + `ttl`.
pub(super) fn slid_session(json: &str, ttl: Duration) -> Result<Session, StateError> {
    let mut session: Session = parse("session", json)?;
    session.expires_at =
        Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    Ok(session)
}

/// The decision for the `count`th hit of a window with `ttl` ms left.
pub(super) fn rate_decision(count: u64, ttl: i64, limit: u32) -> RateDecision {
    if count > u64::from(limit) {
        RateDecision::Limited {
            retry_after: Duration::from_millis(u64::try_from(ttl).unwrap_or(0).max(1)),
        }
    } else {
        RateDecision::Allowed {
            remaining: limit.saturating_sub(u32::try_from(count).unwrap_or(u32::MAX)),
        }
    }
}
