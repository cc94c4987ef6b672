//! The production [`StateStore`] on Redis. Every multi-key change is one Lua script, so it is
//! atomic across API replicas and workers; every key carries an expiry (batch keys expire at
//! the batch's `expires_at`, sessions and rate windows after their TTL).
//!
//! Layout under the configured prefix `P`:
//! - `P session:{id}` — session JSON, `PX` = TTL, slid by `GETEX`.
//! - `P batch:{id}` — hash: `meta` (the batch JSON as created), `state`, `total`, `done`,
//!   `failed`, `exp` (expiry in unix ms).
//! - `P batch:{id}:photos` — hash photo id → queued record JSON.
//! - `P batch:{id}:order` — list of photo ids in insertion order (pagination).
//! - `P batch:{id}:outcomes` — hash photo id → outcome JSON; `HSETNX` is the exactly-once gate.
//! - `P batch:{id}:pending` — hash photo id → pending upload JSON.
//! - `P batch:{id}:effects` — hash effect → `1`.
//! - `P rate:{key}` — fixed-window counter.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde::Deserialize;
use uuid::Uuid;

use super::{apply_outcome, page_bounds};
use crate::model::{Batch, BatchState, PhotoOutcome, PhotoRecord};
use crate::ports::state_store::{
    Authorize, Authorized, CloseResult, PendingUpload, PhotoPage, RateDecision, RecordResult,
    Session, StateError, StateStore,
};

fn default_prefix() -> String {
    "tirage:".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// `redis://host:port[/db]`.
    pub url: String,
    /// Prepended to every key, so deployments (and tests) can share one Redis.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
}

/// Returned fields of a batch hash, in this order, by every script that returns a batch.
const BATCH_FIELDS: &str = "'meta', 'state', 'total', 'done', 'failed'";

fn script(body: &str) -> Script {
    Script::new(&body.replace("BATCH_FIELDS", BATCH_FIELDS))
}

struct Scripts {
    create: Script,
    add: Script,
    close: Script,
    record: Script,
    get_photo: Script,
    list: Script,
    put_pending: Script,
    take_pending: Script,
    mark_effect: Script,
    rate: Script,
    authorize: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            // KEYS: batch, photos, order, outcomes, pending, effects. ARGV: meta, exp ms.
            create: script(
                r"
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'state', 'open', 'total', 0, 'done', 0,
  'failed', 0, 'exp', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1",
            ),
            // KEYS: batch, photos, order. ARGV: limit, then id, json pairs.
            add: script(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return {'closed'} end
local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
local fresh, seen = {}, {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if not seen[id] and redis.call('HEXISTS', KEYS[2], id) == 0 then
    seen[id] = true
    fresh[#fresh + 1] = i
  end
end
if total + #fresh > tonumber(ARGV[1]) then return {'too_many'} end
if #fresh > 0 then
  local exp = redis.call('HGET', KEYS[1], 'exp')
  for _, i in ipairs(fresh) do
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call('RPUSH', KEYS[3], ARGV[i])
  end
  redis.call('HINCRBY', KEYS[1], 'total', #fresh)
  redis.call('PEXPIREAT', KEYS[2], exp)
  redis.call('PEXPIREAT', KEYS[3], exp)
end
return {'ok', '0', unpack(redis.call('HMGET', KEYS[1], BATCH_FIELDS))}",
            ),
            // KEYS: batch.
            close: script(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local now = '0'
if redis.call('HGET', KEYS[1], 'state') == 'open' then
  local f = redis.call('HMGET', KEYS[1], 'total', 'done', 'failed')
  if tonumber(f[2]) + tonumber(f[3]) == tonumber(f[1]) then
    redis.call('HSET', KEYS[1], 'state', 'completed')
    now = '1'
  else
    redis.call('HSET', KEYS[1], 'state', 'processing')
  end
end
return {'ok', now, unpack(redis.call('HMGET', KEYS[1], BATCH_FIELDS))}",
            ),
            // KEYS: batch, photos, outcomes. ARGV: photo id, outcome json, 'done'|'failed'.
            record: script(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return {'not_found'} end
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[2]) == 0 then
  return {'already', '0', unpack(redis.call('HMGET', KEYS[1], BATCH_FIELDS))}
end
redis.call('PEXPIREAT', KEYS[3], redis.call('HGET', KEYS[1], 'exp'))
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
local now = '0'
if redis.call('HGET', KEYS[1], 'state') == 'processing' then
  local f = redis.call('HMGET', KEYS[1], 'total', 'done', 'failed')
  if tonumber(f[2]) + tonumber(f[3]) == tonumber(f[1]) then
    redis.call('HSET', KEYS[1], 'state', 'completed')
    now = '1'
  end
end
return {'recorded', now, unpack(redis.call('HMGET', KEYS[1], BATCH_FIELDS))}",
            ),
            // KEYS: photos, outcomes. ARGV: photo id.
            get_photo: script(
                r"
return {redis.call('HGET', KEYS[1], ARGV[1]) or '', redis.call('HGET', KEYS[2], ARGV[1]) or ''}",
            ),
            // KEYS: batch, order, photos, outcomes. ARGV: start, stop (inclusive).
            list: script(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local out = {'ok', tostring(redis.call('LLEN', KEYS[2]))}
for _, id in ipairs(redis.call('LRANGE', KEYS[2], ARGV[1], ARGV[2])) do
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or ''
  out[#out + 1] = redis.call('HGET', KEYS[4], id) or ''
end
return out",
            ),
            // KEYS: batch, pending. ARGV: photo id, json.
            put_pending: script(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[2], redis.call('HGET', KEYS[1], 'exp'))
return 1",
            ),
            // KEYS: pending. ARGV: photo id.
            take_pending: script(
                r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return '' end
redis.call('HDEL', KEYS[1], ARGV[1])
return v",
            ),
            // KEYS: batch, effects. ARGV: effect.
            mark_effect: script(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local first = redis.call('HSETNX', KEYS[2], ARGV[1], '1')
redis.call('PEXPIREAT', KEYS[2], redis.call('HGET', KEYS[1], 'exp'))
return first",
            ),
            // KEYS: counter. ARGV: window ms.
            rate: script(
                r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}",
            ),
            // KEYS: session, rate counter, batch. ARGV: session ttl ms, rate window ms
            // ('0': count nothing), '1' to read the batch. The `rate` script's counting and
            // `get_batch`'s fields, after reading and sliding the session; an unknown session
            // ends it with nothing counted.
            authorize: script(
                r"
local session = redis.call('GET', KEYS[1])
if not session then return {} end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local n, ttl = 0, 0
if ARGV[2] ~= '0' then
  n = redis.call('INCR', KEYS[2])
  ttl = redis.call('PTTL', KEYS[2])
  if n == 1 or ttl < 0 then
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
end
local out = {session, tostring(n), tostring(ttl)}
if ARGV[3] == '1' then
  local f = redis.call('HMGET', KEYS[3], BATCH_FIELDS)
  for i = 1, 5 do out[3 + i] = f[i] or '' end
end
return out",
            ),
        }
    }
}

pub struct RedisStateStore {
    /// One multiplexed connection: concurrent calls are pipelined on it, and it reconnects
    /// by itself after a failure.
    connection: ConnectionManager,
    prefix: String,
    scripts: Scripts,
}

fn unavailable(e: impl std::fmt::Display) -> StateError {
    StateError::Unavailable(e.to_string())
}

fn redis_error(e: redis::RedisError) -> StateError {
    if e.kind() == redis::ErrorKind::UnexpectedReturnType {
        StateError::Corrupt(e.to_string())
    } else {
        // I/O, timeouts, refused or dropped connections, server busy or loading: transient.
        StateError::Unavailable(e.to_string())
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt(format!("{what}: {e}"))
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, StateError> {
    serde_json::from_str(json).map_err(|e| corrupt(what, e))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StateError> {
    serde_json::to_string(value).map_err(|e| corrupt("serialise", e))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Rebuilds a batch from the `meta, state, total, done, failed` fields a script returned.
fn batch_from(fields: &[String]) -> Result<Batch, StateError> {
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

fn photo_from(record: &str, outcome: &str) -> Result<PhotoRecord, StateError> {
    let mut photo: PhotoRecord = parse("photo", record)?;
    if !outcome.is_empty() {
        apply_outcome(&mut photo, &parse::<PhotoOutcome>("outcome", outcome)?);
    }
    Ok(photo)
}

/// A script reply `[status, completed_now, batch fields…]`.
fn status_reply(reply: &[String]) -> Result<(&str, bool, Option<Batch>), StateError> {
    let status = reply.first().map(String::as_str).unwrap_or_default();
    match reply {
        [_, now, fields @ ..] if !fields.is_empty() => {
            Ok((status, now == "1", Some(batch_from(fields)?)))
        }
        _ => Ok((status, false, None)),
    }
}

impl RedisStateStore {
    /// Builds the client; the connection opens on first use and re-opens after failures, so
    /// this succeeds while Redis is down (check with [`StateStore::ping`]). Call it within a
    /// tokio runtime: the connection lives on that runtime.
    ///
    /// One multiplexed connection rather than a pool: every call is one round trip, where a
    /// pooled connection costs a health-check round trip per checkout.
    pub fn connect(settings: &RedisSettings) -> Result<Self, StateError> {
        let client = redis::Client::open(settings.url.as_str()).map_err(unavailable)?;
        // Bounded waits: a dead Redis must turn into a 503 within seconds, not a hung request.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(redis_error)?;
        Ok(RedisStateStore {
            connection,
            prefix: settings.key_prefix.clone(),
            scripts: Scripts::new(),
        })
    }

    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// A handle on the shared connection (cheap: it is a clone of the manager).
    async fn conn(&self) -> Result<ConnectionManager, StateError> {
        Ok(self.connection.clone())
    }

    fn batch_key(&self, id: Uuid) -> String {
        format!("{}batch:{id}", self.prefix)
    }

    fn batch_keys(&self, id: Uuid) -> [String; 6] {
        let b = self.batch_key(id);
        [
            format!("{b}:photos"),
            format!("{b}:order"),
            format!("{b}:outcomes"),
            format!("{b}:pending"),
            format!("{b}:effects"),
            b,
        ]
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }

    /// Keys matching `pattern` (SCAN, for tests and diagnostics).
    pub async fn scan_keys(&self, pattern: &str) -> Result<Vec<String>, StateError> {
        let mut conn = self.conn().await?;
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Milliseconds until `key` expires: -1 without expiry, -2 when absent.
    pub async fn pttl(&self, key: &str) -> Result<i64, StateError> {
        let mut conn = self.conn().await?;
        conn.pttl(key).await.map_err(redis_error)
    }
}

#[async_trait]
impl StateStore for RedisStateStore {
    async fn ping(&self) -> Result<(), StateError> {
        let mut conn = self.conn().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn put_session(&self, session: &Session, ttl: Duration) -> Result<(), StateError> {
        let mut conn = self.conn().await?;
        let () = conn
            .pset_ex(
                self.session_key(&session.id),
                to_json(session)?,
                millis(ttl),
            )
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError> {
        let mut conn = self.conn().await?;
        // GETEX reads and slides the expiry in one atomic command.
        let json: Option<String> = redis::cmd("GETEX")
            .arg(self.session_key(id))
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let Some(json) = json else { return Ok(None) };
        let mut session: Session = parse("session", &json)?;
        session.expires_at =
            Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        Ok(Some(session))
    }

    async fn create_batch(&self, batch: &Batch) -> Result<(), StateError> {
        let keys = self.batch_keys(batch.id);
        let mut conn = self.conn().await?;
        let _: i64 = self
            .scripts
            .create
            .key(&keys[5])
            .key(&keys[0])
            .key(&keys[1])
            .key(&keys[2])
            .key(&keys[3])
            .key(&keys[4])
            .arg(to_json(batch)?)
            .arg(batch.expires_at.timestamp_millis())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError> {
        let mut conn = self.conn().await?;
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.batch_key(batch_id))
            .arg(&["meta", "state", "total", "done", "failed"])
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let fields: Option<Vec<String>> = fields.into_iter().collect();
        fields.map(|f| batch_from(&f)).transpose()
    }

    async fn add_photos(
        &self,
        batch_id: Uuid,
        photos: &[PhotoRecord],
        limit: u64,
    ) -> Result<Batch, StateError> {
        let keys = self.batch_keys(batch_id);
        let mut invocation = self.scripts.add.key(&keys[5]);
        invocation.key(&keys[0]).key(&keys[1]).arg(limit);
        for photo in photos {
            invocation.arg(photo.id.to_string()).arg(to_json(photo)?);
        }
        let mut conn = self.conn().await?;
        let reply: Vec<String> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        match status_reply(&reply)? {
            ("ok", _, Some(batch)) => Ok(batch),
            ("not_found", ..) => Err(StateError::NotFound),
            ("closed", ..) => Err(StateError::BatchClosed),
            ("too_many", ..) => Err(StateError::TooManyPhotos { limit }),
            (other, ..) => Err(StateError::Corrupt(format!("add_photos reply {other:?}"))),
        }
    }

    async fn close_batch(&self, batch_id: Uuid) -> Result<CloseResult, StateError> {
        let mut conn = self.conn().await?;
        let reply: Vec<String> = self
            .scripts
            .close
            .key(self.batch_key(batch_id))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        match status_reply(&reply)? {
            ("ok", completed_now, Some(batch)) => Ok(CloseResult {
                batch,
                completed_now,
            }),
            ("not_found", ..) => Err(StateError::NotFound),
            (other, ..) => Err(StateError::Corrupt(format!("close reply {other:?}"))),
        }
    }

    async fn record_outcome(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
        outcome: &PhotoOutcome,
    ) -> Result<RecordResult, StateError> {
        let keys = self.batch_keys(batch_id);
        let counter = match outcome {
            PhotoOutcome::Done { .. } => "done",
            PhotoOutcome::Failed { .. } => "failed",
        };
        let mut conn = self.conn().await?;
        let reply: Vec<String> = self
            .scripts
            .record
            .key(&keys[5])
            .key(&keys[0])
            .key(&keys[2])
            .arg(photo_id.to_string())
            .arg(to_json(outcome)?)
            .arg(counter)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        match status_reply(&reply)? {
            ("recorded", completed_now, Some(batch)) => Ok(RecordResult::Recorded {
                batch,
                completed_now,
            }),
            ("already", _, Some(batch)) => Ok(RecordResult::AlreadyRecorded { batch }),
            ("not_found", ..) => Err(StateError::NotFound),
            (other, ..) => Err(StateError::Corrupt(format!("record reply {other:?}"))),
        }
    }

    async fn get_photo(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PhotoRecord>, StateError> {
        let keys = self.batch_keys(batch_id);
        let mut conn = self.conn().await?;
        let reply: Vec<String> = self
            .scripts
            .get_photo
            .key(&keys[0])
            .key(&keys[2])
            .arg(photo_id.to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        match reply.as_slice() {
            [record, _] if record.is_empty() => Ok(None),
            [record, outcome] => photo_from(record, outcome).map(Some),
            _ => Err(StateError::Corrupt("get_photo reply".into())),
        }
    }

    async fn list_photos(
        &self,
        batch_id: Uuid,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PhotoPage, StateError> {
        let (start, end) = page_bounds(cursor, limit)?;
        let keys = self.batch_keys(batch_id);
        let mut conn = self.conn().await?;
        let reply: Vec<String> = self
            .scripts
            .list
            .key(&keys[5])
            .key(&keys[1])
            .key(&keys[0])
            .key(&keys[2])
            .arg(start)
            .arg(end.saturating_sub(1))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let (len, pairs) = match reply.as_slice() {
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
        let end = end.min(len);
        Ok(PhotoPage {
            photos,
            next_cursor: (end < len).then(|| end.to_string()),
        })
    }

    async fn delete_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        let mut conn = self.conn().await?;
        let _: i64 = conn
            .del(&self.batch_keys(batch_id))
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn put_pending_upload(
        &self,
        batch_id: Uuid,
        upload: &PendingUpload,
    ) -> Result<(), StateError> {
        let keys = self.batch_keys(batch_id);
        let mut conn = self.conn().await?;
        let stored: i64 = self
            .scripts
            .put_pending
            .key(&keys[5])
            .key(&keys[3])
            .arg(upload.photo_id.to_string())
            .arg(to_json(upload)?)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        if stored == 1 {
            Ok(())
        } else {
            Err(StateError::NotFound)
        }
    }

    async fn take_pending_upload(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PendingUpload>, StateError> {
        let keys = self.batch_keys(batch_id);
        let mut conn = self.conn().await?;
        let json: String = self
            .scripts
            .take_pending
            .key(&keys[3])
            .arg(photo_id.to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        if json.is_empty() {
            return Ok(None);
        }
        let upload: PendingUpload = parse("pending upload", &json)?;
        let now: DateTime<Utc> = Utc::now();
        Ok((upload.expires_at > now).then_some(upload))
    }

    async fn mark_effect_done(&self, batch_id: Uuid, effect: &str) -> Result<bool, StateError> {
        let keys = self.batch_keys(batch_id);
        let mut conn = self.conn().await?;
        let first: i64 = self
            .scripts
            .mark_effect
            .key(&keys[5])
            .key(&keys[4])
            .arg(effect)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        match first {
            -1 => Err(StateError::NotFound),
            n => Ok(n == 1),
        }
    }

    async fn is_effect_done(&self, batch_id: Uuid, effect: &str) -> Result<bool, StateError> {
        let keys = self.batch_keys(batch_id);
        let mut conn = self.conn().await?;
        conn.hexists(&keys[4], effect).await.map_err(redis_error)
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError> {
        let mut conn = self.conn().await?;
        let (count, ttl): (u64, i64) = self
            .scripts
            .rate
            .key(format!("{}rate:{key}", self.prefix))
            .arg(millis(window))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(rate_decision(count, ttl, limit))
    }

    async fn authorize(&self, request: &Authorize<'_>) -> Result<Option<Authorized>, StateError> {
        let session_key = self.session_key(request.session_id);
        let rate_key = request
            .rate
            .map(|r| format!("{}rate:{}", self.prefix, r.key));
        let batch_key = request.batch.map(|id| self.batch_key(id));
        // Unused keys repeat the session key: a script's keys are always declared.
        let mut invocation = self.scripts.authorize.key(&session_key);
        invocation
            .key(rate_key.as_deref().unwrap_or(&session_key))
            .key(batch_key.as_deref().unwrap_or(&session_key))
            .arg(millis(request.ttl))
            .arg(request.rate.map_or(0, |r| millis(r.window)))
            .arg(u8::from(request.batch.is_some()));
        let mut conn = self.conn().await?;
        let reply: Vec<String> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let [session, count, ttl, batch @ ..] = reply.as_slice() else {
            return Ok(None);
        };
        let mut session: Session = parse("session", session)?;
        session.expires_at =
            Utc::now() + chrono::Duration::from_std(request.ttl).unwrap_or(chrono::Duration::MAX);
        let rate = match request.rate {
            Some(r) => rate_decision(
                count.parse().map_err(|e| corrupt("rate counter", e))?,
                ttl.parse().map_err(|e| corrupt("rate ttl", e))?,
                r.limit,
            ),
            None => RateDecision::Allowed {
                remaining: u32::MAX,
            },
        };
        // A batch that does not exist comes back as empty fields.
        let batch = match batch {
            [] => None,
            fields if fields.iter().any(String::is_empty) => None,
            fields => Some(batch_from(fields)?),
        };
        Ok(Some(Authorized {
            session,
            rate,
            batch,
        }))
    }
}

fn rate_decision(count: u64, ttl: i64, limit: u32) -> RateDecision {
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
