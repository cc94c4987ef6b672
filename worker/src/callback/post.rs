//! One callback attempt: the URL checked by the SSRF guard and pinned to the address that
//! was checked, then one signed POST, all within `callback_timeout_ms`.

use std::time::Duration;

use secrecy::ExposeSecret;
use tirage_core::BatchCompleted;
use tirage_runtime::telemetry::propagation;
use tracing::{Instrument, info_span};

use crate::context::Ctx;
use crate::signature::{SIGNATURE_HEADER, sign};
use crate::ssrf::resolve_callback;

pub(crate) enum Attempt {
    Delivered,
    /// The receiver or the SSRF guard refused it; sending it again would be refused again.
    Refused(String),
    /// Worth another attempt later (no answer, a 5xx, 408, 429, a name that did not resolve).
    Failed(String),
}

/// Resolves, checks and POSTs once; the whole attempt, name resolution included, is bounded
/// by `callback_timeout_ms`.
pub(crate) async fn post_once(ctx: &Ctx, url: &str, body: &[u8]) -> Attempt {
    let limit = Duration::from_millis(ctx.settings.callback_timeout_ms);
    match tokio::time::timeout(limit, attempt(ctx, url, body)).await {
        Ok(outcome) => outcome,
        Err(_) => Attempt::Failed(format!("no answer within {} ms", limit.as_millis())),
    }
}

async fn attempt(ctx: &Ctx, url: &str, body: &[u8]) -> Attempt {
    let s = &ctx.settings;
    // Resolved and checked on every attempt, then pinned: the connection goes to the
    // address we checked, whatever the DNS says a moment later.
    let target = match resolve_callback(url, &s.callback_policy()).await {
        Ok(t) => t,
        Err(e) if e.is_transient() => return Attempt::Failed(e.to_string()),
        Err(e) => return Attempt::Refused(e.to_string()),
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
        Err(e) => return Attempt::Refused(format!("http client: {e}")),
    };
    // Signed per attempt: the timestamp is the sending time, so a retry minutes later
    // still falls within the receiver's tolerance window.
    let signature = sign(
        s.callback_secret.expose_secret().as_bytes(),
        ctx.now().timestamp(),
        body,
    );
    // A receiver that traces continues the batch's trace: the POST carries the context of
    // its own client span (W3C `traceparent`, when tracing is on).
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
        Err(e) => return Attempt::Failed(e.to_string()),
    };
    if status.is_success() {
        Attempt::Delivered
    } else if status.is_client_error()
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        Attempt::Refused(format!("answered {status}"))
    } else if status.is_redirection() {
        // Never followed: the redirect target was not checked by the SSRF guard.
        Attempt::Refused(format!("answered {status}; redirects are not followed"))
    } else {
        Attempt::Failed(format!("answered {status}"))
    }
}
