//! Sessions: stored with their TTL, and a request's authentication ([`StateStore::authorize`]):
//! the session and its request counter share a hash tag, so one script slides the one and
//! counts on the other; the route's batch lives in another slot and is read alongside, on
//! the same connection, so the request still waits one round trip.
//!
//! [`StateStore::authorize`]: tirage_ports::StateStore::authorize

use std::time::Duration;

use redis::AsyncCommands;

use super::RedisStateStore;
use super::codec::{corrupt, millis, rate_decision, redis_error, slid_session, to_json};
use tirage_ports::state_store::{
    Authorize, Authorized, RateDecision, Session, StateError, StateStore,
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
