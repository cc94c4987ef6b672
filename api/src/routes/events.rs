//! Server-sent events of a batch's progress. The stream polls the state store (the API
//! keeps nothing in memory between requests, so any replica can serve any stream), sends
//! `progress` when the counters change and `completed` at the end, and lives a bounded time:
//! `EventSource` clients reconnect by themselves.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use bytes::Bytes;
use tirage_shared::model::{Batch, BatchState};
use tirage_shared::ports::StateStore;
use tirage_shared::wire::{BatchView, ErrorBody};
use tokio::time::Instant;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::{ApiError, SessionErrors};
use crate::extract::owned_batch;
use crate::state::AppState;

fn event(name: &str, batch: &Batch) -> Bytes {
    let data = serde_json::to_string(&BatchView::from(batch)).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

type Snapshot = (BatchState, u64, u64, u64);

fn snapshot(b: &Batch) -> Snapshot {
    (b.state, b.total, b.done, b.failed)
}

struct Poller {
    store: Arc<dyn StateStore>,
    batch_id: Uuid,
    owner: String,
    last: Option<Snapshot>,
    pending_first: Option<Batch>,
    finished: bool,
    poll: Duration,
    keepalive: Duration,
    deadline: Instant,
    last_sent: Instant,
}

impl Poller {
    /// The next chunk to send, or `None` when the stream is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        if let Some(batch) = self.pending_first.take() {
            return Some(self.emit(&batch));
        }
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                self.finished = true;
                return None;
            }
            tokio::time::sleep(self.poll.min(self.deadline - now)).await;
            match self.store.get_batch(self.batch_id).await {
                Ok(Some(batch)) if batch.owner == self.owner => {
                    if self.last != Some(snapshot(&batch)) {
                        return Some(self.emit(&batch));
                    }
                }
                Ok(_) => {
                    // Deleted or expired while watched.
                    self.finished = true;
                    return Some(Bytes::from_static(
                        b"event: error\ndata: {\"error\":{\"code\":\"batch_not_found\",\"message\":\"batch not found\"}}\n\n",
                    ));
                }
                Err(e) => {
                    // A passing outage: keep the stream, try again next tick.
                    tracing::warn!(batch_id = %self.batch_id, error = %e, "event poll failed");
                }
            }
            if self.last_sent.elapsed() >= self.keepalive {
                self.last_sent = Instant::now();
                return Some(Bytes::from_static(b": keep-alive\n\n"));
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
    let now = Instant::now();
    let poller = Poller {
        store: state.ports.state.clone(),
        batch_id: batch.id,
        owner: batch.owner.clone(),
        last: None,
        pending_first: Some(batch),
        finished: false,
        poll: api.events_poll(),
        keepalive: Duration::from_secs(api.events_keepalive_secs.max(1)),
        deadline: now + Duration::from_secs(api.events_max_secs),
        last_sent: now,
    };
    let stream = futures::stream::unfold(poller, |mut poller| async move {
        let chunk = poller.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), poller))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Tells nginx not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}
