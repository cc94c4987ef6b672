//! Sessions: stored with their TTL, and a request's authentication ([`StateStore::authorize`]):
//! the session and its request counter share a hash tag, so one script slides the one and
//! counts on the other; the route's batch lives in another slot and is read alongside, on
//! the same connection, so the request still waits one round trip.
//!
//! [`StateStore::authorize`]: tirage_ports::StateStore::authorize

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStateStore;
use super::codec::{corrupt, millis, rate_decision, redis_error, slid_session, to_json};
use tirage_ports::{
    Authorize, Authorized, Batches, Cap, ClientLimits, RateDecision, Session, SessionQuota,
    SessionRate, Sessions, StateError,
};

impl RedisStateStore {
    pub(super) async fn put_session_json(
        &self,
        session: &Session,
        ttl: Duration,
    ) -> Result<(), StateError> {
        let key = self.keys.session(&session.id);
        let () = self
            .conn()
            .pset_ex(key, to_json(session)?, millis(ttl))
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    pub(super) async fn authorize_request(
        &self,
        request: &Authorize<'_>,
    ) -> Result<Option<Authorized>, StateError> {
        let mut session_script = self.scripts.authorize(
            &self.keys.session(request.session_id),
            &self.keys.session_rate(request.session_id),
        );
        session_script
            .arg(millis(request.ttl))
            .arg(request.rate.map_or(0, |r| millis(r.window)));
        let mut conn = self.conn();
        let session = session_script.invoke_async::<Vec<String>>(&mut conn);
        let batch = async {
            match request.batch {
                Some(id) => self.get_batch(id).await,
                None => Ok(None),
            }
        };
        let (reply, batch) = tokio::join!(session, batch);
        let reply = reply.map_err(redis_error)?;
        let [session, count, ttl] = reply.as_slice() else {
            return Ok(None);
        };
        let session = slid_session(session, request.ttl)?;
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
        Ok(Some(Authorized {
            session,
            rate,
            batch: batch?,
        }))
    }
}

#[async_trait]
impl Sessions for RedisStateStore {
    async fn put_session(
        &self,
        session: &Session,
        ttl: Duration,
        quota: Option<SessionQuota<'_>>,
    ) -> Result<bool, StateError> {
        match quota {
            Some(
                quota @ SessionQuota {
                    max: Cap::AtMost(_),
                    ..
                },
            ) => self.store_session_capped(session, ttl, quota).await,
            _ => {
                self.put_session_json(session, ttl).await?;
                Ok(true)
            }
        }
    }

    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError> {
        // GETEX reads and slides the expiry in one atomic command.
        let json: Option<String> = redis::cmd("GETEX")
            .arg(self.keys.session(id))
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        json.map(|json| slid_session(&json, ttl)).transpose()
    }
}

#[async_trait]
impl ClientLimits for RedisStateStore {
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError> {
        let (count, ttl): (u64, i64) = self
            .scripts
            .rate_limit(&self.keys.rate(key))
            .arg(millis(window))
            .arg(1)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(rate_decision(count, ttl, limit))
    }

    async fn charge_session_requests(
        &self,
        session_id: &str,
        hits: u32,
        rate: SessionRate,
    ) -> Result<RateDecision, StateError> {
        let (count, ttl): (u64, i64) = self
            .scripts
            .rate_limit(&self.keys.session_rate(session_id))
            .arg(millis(rate.window))
            .arg(hits)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(rate_decision(count, ttl, rate.limit))
    }

    async fn open_stream(
        &self,
        session_id: &str,
        stream_id: Uuid,
        limit: u32,
        lease: Duration,
    ) -> Result<bool, StateError> {
        self.lease_stream(session_id, stream_id, limit, lease).await
    }

    async fn close_stream(&self, session_id: &str, stream_id: Uuid) -> Result<(), StateError> {
        self.end_stream(session_id, stream_id).await
    }
}
