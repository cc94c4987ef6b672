//! Sessions, request rates and stream leases in memory ([`Sessions`], [`ClientLimits`]);
//! the caps themselves are in `caps.rs`.

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::{MemoryStateStore, after};
use tirage_ports::{
    ClientLimits, RateDecision, Session, SessionQuota, SessionRate, Sessions, StateError,
    session_rate_key,
};

#[async_trait]
impl Sessions for MemoryStateStore {
    async fn put_session(
        &self,
        session: &Session,
        ttl: Duration,
        quota: Option<SessionQuota<'_>>,
    ) -> Result<bool, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let stored = inner.put_session(session, ttl, quota, now);
        inner.wrote(now);
        Ok(stored)
    }

    async fn touch_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        match inner.sessions.get_mut(id) {
            Some(session) if session.expires_at > now => {
                session.expires_at = after(now, ttl);
                Ok(Some(session.clone()))
            }
            Some(_) => {
                inner.sessions.remove(id);
                Ok(None)
            }
            None => Ok(None),
        }
    }
}

#[async_trait]
impl ClientLimits for MemoryStateStore {
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let decision = inner.count_request(key, 1, limit, window, now);
        inner.wrote(now);
        Ok(decision)
    }

    async fn charge_session_requests(
        &self,
        session_id: &str,
        hits: u32,
        rate: SessionRate,
    ) -> Result<RateDecision, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let key = session_rate_key(session_id);
        let decision = inner.count_request(&key, hits, rate.limit, rate.window, now);
        inner.wrote(now);
        Ok(decision)
    }

    async fn open_stream(
        &self,
        session_id: &str,
        stream_id: Uuid,
        limit: u32,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let opened = inner.open_stream(session_id, stream_id, limit, after(now, lease), now);
        if opened {
            inner.wrote(now);
        }
        Ok(opened)
    }

    async fn close_stream(&self, session_id: &str, stream_id: Uuid) -> Result<(), StateError> {
        let mut inner = self.lock();
        if let Some(leases) = inner.streams.get_mut(session_id) {
            leases.remove(&stream_id);
            if leases.is_empty() {
                inner.streams.remove(session_id);
            }
        }
        Ok(())
    }
}
