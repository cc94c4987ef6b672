//! The state store (Redis in production, memory when embedded), composed of focused ports:
//! a process names the one it needs, and an adapter implements each in its own block.
//! Every key expires: nothing here outlives its batch or session.
//!
//! The counting operations are atomic in every adapter (a Lua script in Redis, one lock in
//! memory): that is what turns at-least-once delivery into exactly-once batch counts.

use async_trait::async_trait;

use crate::batches::Batches;
use crate::effects::Effects;
use crate::progress::Progress;
use crate::runs::Runs;
use crate::sessions::{
    Authorize, Authorized, ClientLimits, RateDecision, Sessions, session_rate_key,
};
use crate::state_error::StateError;
use crate::storage::Storage;
use crate::upkeep::Upkeep;
use crate::uploads::PendingUploads;

#[async_trait]
pub trait StateStore:
    Sessions + ClientLimits + Batches + Runs + PendingUploads + Progress + Upkeep + Effects + Storage
{
    /// Proves the store answers; used by `/readyz`.
    async fn ping(&self) -> Result<(), StateError>;

    /// Everything a request needs before its handler runs, as one operation (one round trip
    /// in Redis, where every API request starts): the session slid by `ttl`, one hit
    /// counted, and the route's batch read. `None`, with nothing counted, when the session
    /// is unknown or expired.
    async fn authorize(&self, request: &Authorize<'_>) -> Result<Option<Authorized>, StateError> {
        let Some(session) = self.touch_session(request.session_id, request.ttl).await? else {
            return Ok(None);
        };
        let rate = match request.rate {
            Some(r) => {
                let key = session_rate_key(request.session_id);
                self.rate_limit(&key, r.limit, r.window).await?
            }
            None => RateDecision::Allowed {
                remaining: u32::MAX,
            },
        };
        let batch = match request.batch {
            Some(id) => self.get_batch(id).await?,
            None => None,
        };
        Ok(Some(Authorized {
            session,
            rate,
            batch,
        }))
    }
}
