//! Request ids, a span and a closing log line per request, and per-request metrics. (The
//! log subscriber itself is installed by [`tirage_runtime::telemetry`].)

use std::future::{Ready, ready};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use tirage_core::codes::ErrorCode;
use tirage_ports::TraceContext;
use tirage_runtime::telemetry::propagation;
use tracing::Instrument;

use crate::error::ApiError;
use crate::state::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the current request: the one nginx (or the client) sent in `X-Request-Id`
/// when it is sane, otherwise a fresh UUID. Echoed in the response, recorded in every log
/// line of the request and carried into the resize jobs it publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl FromRequest for RequestId {
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(uuid::Uuid::new_v4().to_string()));
        ready(Ok(id))
    }
}

/// An incoming id is kept only if it is short printable ASCII, so it cannot forge log lines.
fn accept_incoming(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| s.to_owned())
}

/// Middleware: request id, a tracing span per request, a closing log line, and metrics by
/// route pattern and status.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(accept_incoming)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().to_string();
    // The trace's span name, known before routing (the resource map matches the path); a
    // name recorded later would not reach a span already started.
    let pattern = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "request",
        otel.name = format!("{method} {pattern}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id,
        method = %method,
        path = %req.path(),
    );
    // A client (or a proxy) that traces sends its context: this request continues it.
    propagation::continue_trace(&span, &incoming_trace(req.headers()));
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();

    let (status, route, code) = match &result {
        Ok(res) => (
            res.status(),
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned()),
            res.response().error().and_then(error_code),
        ),
        Err(err) => (
            err.as_response_error().status_code(),
            "unmatched".to_owned(),
            error_code(err),
        ),
    };
    if let Some(state) = state {
        let status_label = status.as_u16().to_string();
        state
            .metrics
            .requests
            .with_label_values(&[route.as_str(), method.as_str(), status_label.as_str()])
            .inc();
        if let Some(code) = code {
            state
                .metrics
                .errors
                .with_label_values(&[route.as_str(), code.as_str()])
                .inc();
        }
        state
            .metrics
            .latency
            .with_label_values(&[route.as_str(), method.as_str()])
            .observe(elapsed.as_secs_f64());
    }
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            route = %route,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request finished"
        )
    });

    let mut res = result?;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(res)
}

/// The W3C Trace Context headers of a request (values that are not sane are dropped).
fn incoming_trace(headers: &actix_web::http::header::HeaderMap) -> TraceContext {
    let mut trace = TraceContext::none();
    for name in [TraceContext::TRACEPARENT, TraceContext::TRACESTATE] {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            trace.set(name, value);
        }
    }
    trace
}

/// The code of an error the API answered (`None` for errors of the framework itself, which
/// carry no code of ours).
fn error_code(err: &actix_web::Error) -> Option<ErrorCode> {
    err.as_error::<ApiError>().map(ApiError::code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_request_ids_are_kept() {
        let ok = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(accept_incoming(&ok).as_deref(), Some("abc-123_x.y:z"));
        assert_eq!(accept_incoming(&HeaderValue::from_static("a b")), None);
        assert_eq!(accept_incoming(&HeaderValue::from_static("")), None);
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert_eq!(accept_incoming(&long), None);
    }
}
