//! One callback attempt: signed, then handed to the worker's transport
//! ([`crate::callback_transport::CallbackTransport`]) within `callback_timeout_ms`.

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::callback_transport::CallbackAttempt;
use crate::context::Ctx;
use crate::signature::sign;

/// Signs and sends once; the whole attempt, name resolution included, is bounded by
/// `callback_timeout_ms`.
pub(crate) async fn post_once(ctx: &Ctx, url: &str, body: &[u8]) -> CallbackAttempt {
    let limit = Duration::from_millis(ctx.settings.callback_timeout_ms);
    // Signed per attempt: the timestamp is the sending time, so a retry minutes later
    // still falls within the receiver's tolerance window.
    let signature = sign(
        ctx.settings.callback_secret.expose_secret().as_bytes(),
        ctx.now().timestamp(),
        body,
    );
    let sent = ctx
        .seams
        .callbacks
        .post(&ctx.settings, url, body, &signature);
    match tokio::time::timeout(limit, sent).await {
        Ok(outcome) => outcome,
        Err(_) => CallbackAttempt::Failed(format!("no answer within {} ms", limit.as_millis())),
    }
}
