//! Following a batch until it completes: its event stream while that works, polling after.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tirage_core::codes::ErrorCode;
use tirage_core::wire::BatchView;
use uuid::Uuid;

use super::progress::show_progress;
use crate::client::{Client, ClientError};
use crate::codes::Code;

/// How often the fallback poller asks for the batch.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Streams that end sooner than this count as broken.
const SHORT_STREAM: Duration = Duration::from_secs(2);
/// Broken streams tolerated before polling instead.
const SHORT_STREAMS: u32 = 3;

/// Follows the batch until it completes; returns its final view.
pub async fn watch(
    client: Client,
    batch: Uuid,
    bar: ProgressBar,
) -> Result<BatchView, ClientError> {
    let mut short_streams = 0u32;
    while short_streams < SHORT_STREAMS {
        let mut events = match client.batch_events(batch).await {
            Ok(events) => events,
            // The batch itself is gone or the session is: polling would fail the same way.
            Err(e @ ClientError::Api { status: 401, .. }) => return Err(e),
            Err(e @ ClientError::Api { status: 404, .. })
                if e.code() == Code::Api(ErrorCode::BatchNotFound) =>
            {
                return Err(e);
            }
            Err(e) => {
                tracing::debug!(error = %e, "no event stream; polling instead");
                break;
            }
        };
        let opened = Instant::now();
        while let Some(event) = events.next().await {
            match event.event.as_str() {
                "progress" | "completed" => {
                    if let Ok(view) = serde_json::from_str::<BatchView>(&event.data) {
                        show_progress(&bar, &view);
                        if view.is_completed() {
                            return Ok(view);
                        }
                    }
                }
                "error" => {
                    return Err(ClientError::Protocol(format!(
                        "the event stream failed: {}",
                        event.data
                    )));
                }
                _ => {}
            }
        }
        // Streams live a bounded time; reconnect, unless they keep ending at once.
        if opened.elapsed() < SHORT_STREAM {
            short_streams += 1;
        }
    }
    loop {
        let view = client.get_batch(batch).await?;
        show_progress(&bar, &view);
        if view.is_completed() {
            return Ok(view);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
