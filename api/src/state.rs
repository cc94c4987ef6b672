//! What the handlers of one HTTP worker share. A module of its own so that the server
//! (which builds it), the routes, the use cases and the middleware all read it without
//! importing one another.

use std::sync::Arc;

use tirage_ports::Clock;
use tirage_runtime::Ports;

use crate::backpressure::UploadSlots;
use crate::metrics::Metrics;
use crate::progress::ProgressHub;
use crate::settings::Settings;
use crate::signed_urls::RenditionUrls;

/// What the handlers of one HTTP worker share, as `web::Data`.
pub struct AppState {
    pub ports: Ports,
    pub settings: Settings,
    pub metrics: Metrics,
    /// SHA-256 of each configured API key (see [`crate::auth::digests_equal`]).
    pub api_key_digests: Vec<[u8; 32]>,
    /// This process's multipart upload slots, shared by every HTTP worker.
    pub uploads: UploadSlots,
    /// This process's one progress subscription, fanned out to its event streams.
    pub progress: ProgressHub,
    /// Signs rendition URLs for CDNs, when `[api] signed_rendition_urls` is on.
    pub rendition_urls: Option<RenditionUrls>,
    /// Dates sessions, batches, jobs and signed URLs (the simulator's is virtual).
    pub clock: Arc<dyn Clock>,
}
