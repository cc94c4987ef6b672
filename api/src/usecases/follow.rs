//! Following a batch's progress (the use case behind `GET /v1/batches/{id}/events`). A
//! follower reads the batch when its replica's progress hub ([`crate::progress`]) says it
//! changed, and otherwise only on a slow safety poll (`api.events_poll_ms`); it reports the
//! counters when they change and the completion at the end, and lives a bounded time
//! (`EventSource` clients reconnect by themselves). Any replica can serve any follower: the
//! batch is read from the state store.
//!
//! A session holds at most `api.events_per_session` followers at once, across replicas: each
//! holds a lease in the state store, renewed with every keep-alive and ended when the
//! follower is dropped (a dead replica's leases lapse by themselves).

use std::sync::Arc;
use std::time::Duration;

use tirage_core::model::{Batch, BatchState};
use tirage_ports::StateStore;
use tokio::time::Instant;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::owned_batch;
use crate::progress::BatchWatch;
use crate::state::AppState;
use crate::usecases::slots::{self, Lease};

/// What a follower is told next.
#[derive(Debug)]
pub enum Followed {
    /// The batch as it is now: sent first, then whenever its counters change.
    Progress(Batch),
    /// The batch completed: the last thing sent.
    Completed(Batch),
    /// The batch was deleted or expired while followed: the last thing sent.
    Gone,
    /// Nothing changed for a keep-alive period.
    KeepAlive,
}

/// Starts following the caller's batch: `batch_not_found` when it is not theirs,
/// `too_many_streams` when their session, or their client address across its sessions,
/// follows its maximum already.
pub async fn follow(
    state: &AppState,
    auth: &Authenticated,
    batch_id: Uuid,
) -> Result<Follower, ApiError> {
    let batch = owned_batch(state, auth, batch_id).await?;
    let api = &state.settings.api;
    let store = state.ports.state.clone();
    let caps = slots::caps(
        &auth.session.id,
        &auth.address,
        slots::STREAMS,
        api.events_per_session,
        api.events_per_address,
    );
    let lease = Lease::open(store.clone(), caps, api.events_lease())
        .await?
        .map_err(|full| ApiError::TooManyStreams {
            scope: full.scope,
            limit: full.limit,
        })?;
    // Watching starts before the first read is sent, so no change falls in between.
    let watch = state.progress.watch(batch.id);
    let now = Instant::now();
    Ok(Follower {
        store,
        watch,
        lease,
        batch_id: batch.id,
        owner: batch.owner.clone(),
        last: None,
        pending_first: Some(batch),
        finished: false,
        poll: api.events_poll(),
        keepalive: api.events_keepalive(),
        deadline: now + Duration::from_secs(api.events_max_secs),
        last_sent: now,
        last_read: now,
        lease_renewed: now,
    })
}

type Snapshot = (BatchState, u64, u64, u64);

fn snapshot(b: &Batch) -> Snapshot {
    (b.state, b.total, b.done, b.failed)
}

/// One follower of a batch: what it sent last and when it must wake.
pub struct Follower {
    store: Arc<dyn StateStore>,
    watch: BatchWatch,
    lease: Lease,
    batch_id: Uuid,
    owner: String,
    last: Option<Snapshot>,
    pending_first: Option<Batch>,
    finished: bool,
    poll: Duration,
    keepalive: Duration,
    deadline: Instant,
    last_sent: Instant,
    last_read: Instant,
    lease_renewed: Instant,
}

impl Follower {
    /// The next thing to tell the follower, or `None` when the stream is over.
    pub async fn next(&mut self) -> Option<Followed> {
        if self.finished {
            return None;
        }
        if let Some(batch) = self.pending_first.take() {
            return Some(self.emit(batch));
        }
        loop {
            if Instant::now() >= self.deadline {
                self.finished = true;
                return None;
            }
            let wake_at = (self.last_read + self.poll)
                .min(self.last_sent + self.keepalive)
                .min(self.lease_renewed + self.keepalive)
                .min(self.deadline);
            let announced = tokio::select! {
                () = self.watch.changed() => true,
                () = tokio::time::sleep_until(wake_at) => false,
            };
            let now = Instant::now();
            // Renewed first: a batch that changes all the time must not starve the lease.
            if now >= self.lease_renewed + self.keepalive {
                self.lease_renewed = now;
                if !self.lease.renew().await {
                    self.finished = true;
                    return None;
                }
            }
            if announced || now >= self.last_read + self.poll {
                self.last_read = now;
                if let Some(chunk) = self.read().await {
                    return Some(chunk);
                }
            }
            if now >= self.last_sent + self.keepalive {
                self.last_sent = now;
                return Some(Followed::KeepAlive);
            }
        }
    }

    /// Reads the batch; what to send when it changed or went away.
    async fn read(&mut self) -> Option<Followed> {
        match self.store.get_batch(self.batch_id).await {
            Ok(Some(batch)) if batch.owner == self.owner => {
                (self.last != Some(snapshot(&batch))).then(|| self.emit(batch))
            }
            Ok(_) => {
                // Deleted or expired while watched.
                self.finished = true;
                Some(Followed::Gone)
            }
            Err(e) => {
                // A passing outage: keep the stream, read again on the next wake.
                tracing::warn!(batch_id = %self.batch_id, error = %e, "event read failed");
                None
            }
        }
    }

    fn emit(&mut self, batch: Batch) -> Followed {
        self.last = Some(snapshot(&batch));
        self.last_sent = Instant::now();
        if batch.state == BatchState::Completed {
            self.finished = true;
            return Followed::Completed(batch);
        }
        Followed::Progress(batch)
    }
}
