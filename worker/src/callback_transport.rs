//! Where a worker's callbacks go: the [`CallbackTransport`] seam, and [`HttpCallbacks`], its
//! implementation in the processes: the URL checked by the SSRF guard and pinned to the
//! address that was checked, then one POST.

use std::time::Duration;

use async_trait::async_trait;
use tirage_core::BatchCompleted;
use tirage_runtime::telemetry::propagation;
use tracing::{Instrument, info_span};

use crate::settings::WorkerSettings;
use crate::signature::SIGNATURE_HEADER;
use crate::ssrf::resolve_callback;

/// What one attempt to deliver a callback came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackAttempt {
    Delivered,
    /// The receiver or the SSRF guard refused it; sending it again would be refused again.
    Refused(String),
    /// Worth another attempt later (no answer, a 5xx, 408, 429, a name that did not resolve).
    Failed(String),
}

/// Where a worker's callbacks go: [`HttpCallbacks`] in the processes, a simulated receiver
/// in `tirage-sim`. An attempt that does not answer is cut at `callback_timeout_ms` by the
/// caller, so a transport need not bound its own.
#[async_trait]
pub trait CallbackTransport: Send + Sync + 'static {
    /// One attempt to POST `body` to `url`, its signature header set to `signature`.
    async fn post(
        &self,
        settings: &WorkerSettings,
        url: &str,
        body: &[u8],
        signature: &str,
    ) -> CallbackAttempt;
}

/// Callbacks over HTTP, guarded against requests to the internal network.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpCallbacks;

#[async_trait]
impl CallbackTransport for HttpCallbacks {
    async fn post(
        &self,
        s: &WorkerSettings,
        url: &str,
        body: &[u8],
        signature: &str,
    ) -> CallbackAttempt {
        // Resolved and checked on every attempt, then pinned: the connection goes to the
        // address we checked, whatever the DNS says a moment later.
        let target = match resolve_callback(url, &s.callback_policy()).await {
            Ok(t) => t,
            Err(e) if e.is_transient() => return CallbackAttempt::Failed(e.to_string()),
            Err(e) => return CallbackAttempt::Refused(e.to_string()),
        };
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_millis(s.callback_timeout_ms));
        if let Some(host) = &target.host {
            builder = builder.resolve(host, target.addr);
        }
        let client = match builder.build() {
            Ok(client) => client,
            Err(e) => return CallbackAttempt::Refused(format!("http client: {e}")),
        };
        // A receiver that traces continues the batch's trace: the POST carries the context
        // of its own client span (W3C `traceparent`, when tracing is on).
        let span = info_span!("post callback", otel.kind = "client");
        let mut request = client
            .post(target.url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("tirage-worker/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-tirage-event", BatchCompleted::EVENT)
            .header(SIGNATURE_HEADER, signature);
        for (name, value) in propagation::of(&span).headers() {
            request = request.header(name, value);
        }
        let sent = request.body(body.to_vec()).send().instrument(span).await;
        let status = match sent {
            Ok(response) => response.status(),
            Err(e) => return CallbackAttempt::Failed(e.to_string()),
        };
        if status.is_success() {
            CallbackAttempt::Delivered
        } else if status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            CallbackAttempt::Refused(format!("answered {status}"))
        } else if status.is_redirection() {
            // Never followed: the redirect target was not checked by the SSRF guard.
            CallbackAttempt::Refused(format!("answered {status}; redirects are not followed"))
        } else {
            CallbackAttempt::Failed(format!("answered {status}"))
        }
    }
}
