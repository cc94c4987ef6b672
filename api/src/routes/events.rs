//! Server-sent events of a batch's progress. A stream reads the batch when its replica's
//! progress hub ([`crate::progress`]) says it changed, and otherwise only on a slow safety
//! poll (`api.events_poll_ms`); it sends `progress` when the counters change and
//! `completed` at the end, and lives a bounded time: `EventSource` clients reconnect by
//! themselves. Any replica can serve any stream: the batch is read from the state store.
//!
//! A session holds at most `api.events_per_session` streams at once, across replicas: each
//! stream holds a lease in the state store, renewed with every keep-alive and ended when
//! the stream is dropped (a dead replica's leases lapse by themselves).

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use bytes::Bytes;
use tirage_core::model::{Batch, BatchState};
use tirage_core::wire::{BatchView, ErrorBody};
use tirage_ports::StateStore;
use tokio::time::Instant;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::{ApiError, SessionErrors};
use crate::extract::owned_batch;
use crate::progress::BatchWatch;
use crate::state::AppState;

fn event(name: &str, batch: &Batch) -> Bytes {
    let data = serde_json::to_string(&BatchView::from(batch)).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

type Snapshot = (BatchState, u64, u64, u64);

fn snapshot(b: &Batch) -> Snapshot {
    (b.state, b.total, b.done, b.failed)
}

/// One stream's slot among its session's streams; given back when the stream is dropped.
struct Lease {
    store: Arc<dyn StateStore>,
    session_id: String,
    stream_id: Uuid,
    limit: u32,
    length: Duration,
}

impl Lease {
    /// Takes a slot, or `None` when the session holds its maximum already.
    async fn open(
        store: Arc<dyn StateStore>,
        session_id: String,
        limit: u32,
        length: Duration,
    ) -> Result<Option<Lease>, ApiError> {
        let stream_id = Uuid::new_v4();
        let opened = store
            .open_stream(&session_id, stream_id, limit, length)
            .await?;
        Ok(opened.then_some(Lease {
            store,
            session_id,
            stream_id,
            limit,
            length,
        }))
    }

    /// Pushes the lease's end further; false when it lapsed and its slot was taken.
    async fn renew(&self) -> bool {
        let renew =
            self.store
                .open_stream(&self.session_id, self.stream_id, self.limit, self.length);
        match renew.await {
            Ok(held) => held,
            // A passing outage: the lease is still good for a while.
            Err(e) => {
                tracing::warn!(error = %e, "event stream lease not renewed");
                true
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (store, session_id, stream_id) =
            (self.store.clone(), self.session_id.clone(), self.stream_id);
        // Outside a runtime (the process is ending) the lease lapses by itself.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.close_stream(&session_id, stream_id).await {
                    tracing::debug!(error = %e, "event stream lease left to lapse");
                }
            });
        }
    }
}

struct Follower {
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
    /// The next chunk to send, or `None` when the stream is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        if let Some(batch) = self.pending_first.take() {
            return Some(self.emit(&batch));
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
                return Some(Bytes::from_static(b": keep-alive\n\n"));
            }
        }
    }

    /// Reads the batch; the chunk to send when it changed or went away.
    async fn read(&mut self) -> Option<Bytes> {
        match self.store.get_batch(self.batch_id).await {
            Ok(Some(batch)) if batch.owner == self.owner => {
                (self.last != Some(snapshot(&batch))).then(|| self.emit(&batch))
            }
            Ok(_) => {
                // Deleted or expired while watched.
                self.finished = true;
                Some(Bytes::from_static(
                    b"event: error\ndata: {\"error\":{\"code\":\"batch_not_found\",\"message\":\"batch not found\"}}\n\n",
                ))
            }
            Err(e) => {
                // A passing outage: keep the stream, read again on the next wake.
                tracing::warn!(batch_id = %self.batch_id, error = %e, "event read failed");
                None
            }
        }
    }

    fn emit(&mut self, batch: &Batch) -> Bytes {
        self.last = Some(snapshot(batch));
        self.last_sent = Instant::now();
        let mut out = event("progress", batch).to_vec();
        if batch.state == BatchState::Completed {
            self.finished = true;
            out.extend_from_slice(&event("completed", batch));
        }
        Bytes::from(out)
    }
}

/// Follow a batch's progress as server-sent events.
///
/// Sends a `progress` event (the batch JSON) now and whenever its counters change, then a
/// final `completed` event. The stream ends after a configured lifetime; reconnect to go on.
/// A session holds a configured number of streams at once (`too_many_streams`, 429, past it).
#[utoipa::path(
    tag = "batches",
    params(("batch_id" = Uuid, Path, description = "Batch id")),
    responses(
        (status = 200, description = "`text/event-stream` of `progress` and `completed` events, each carrying the batch JSON", content_type = "text/event-stream", item_schema = ref("#/components/schemas/BatchEvent")),
        (status = 404, description = "No such batch for this session", body = ErrorBody),
        SessionErrors,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/v1/batches/{batch_id}/events")]
pub async fn batch_events(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let batch = owned_batch(&state, &auth, path.into_inner()).await?;
    let api = &state.settings.api;
    let store = state.ports.state.clone();
    let limit = api.events_per_session;
    let lease = Lease::open(
        store.clone(),
        auth.session.id.clone(),
        limit,
        api.events_lease(),
    )
    .await?
    .ok_or(ApiError::TooManyStreams { limit })?;
    // Watching starts before the first read is sent, so no change falls in between.
    let watch = state.progress.watch(batch.id);
    let now = Instant::now();
    let follower = Follower {
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
    };
    let stream = futures::stream::unfold(follower, |mut follower| async move {
        let chunk = follower.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), follower))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Tells nginx not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}
