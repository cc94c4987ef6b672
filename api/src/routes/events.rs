//! Server-sent events of a batch's progress: the HTTP side of [`crate::usecases::follow`]
//! (`progress` when the counters change, `completed` at the end, `error` when the batch went
//! away, comments as keep-alives).

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use bytes::Bytes;
use tirage_core::codes::ErrorCode;
use tirage_core::model::Batch;
use tirage_core::wire::{BatchView, ErrorBody};
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::{ApiError, SessionErrors};
use crate::state::AppState;
use crate::usecases::follow::{self, Followed};

fn event(name: &str, data: &impl serde::Serialize) -> String {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    format!("event: {name}\ndata: {data}\n\n")
}

fn progress(batch: &Batch) -> String {
    event("progress", &BatchView::from(batch))
}

/// The bytes one thing followed is sent as.
fn chunk(followed: &Followed) -> Bytes {
    match followed {
        Followed::Progress(batch) => Bytes::from(progress(batch)),
        Followed::Completed(batch) => {
            Bytes::from(progress(batch) + &event("completed", &BatchView::from(batch)))
        }
        Followed::Gone => {
            let gone = ErrorCode::BatchNotFound;
            Bytes::from(event(
                "error",
                &ErrorBody::new(gone.as_str(), "batch not found"),
            ))
        }
        Followed::KeepAlive => Bytes::from_static(b": keep-alive\n\n"),
    }
}

/// Follow a batch's progress as server-sent events.
///
/// Sends a `progress` event (the batch JSON) now and whenever its counters change, then a
/// final `completed` event. The stream ends after a configured lifetime; reconnect to go on.
/// A session holds a configured number of streams at once, and the sessions of one client
/// address together another (`too_many_streams`, 429, past either).
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
    let follower = follow::follow(&state, &auth, path.into_inner()).await?;
    let stream = futures::stream::unfold(follower, |mut follower| async move {
        let followed = follower.next().await?;
        Some((
            Ok::<_, std::convert::Infallible>(chunk(&followed)),
            follower,
        ))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Tells nginx not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}
