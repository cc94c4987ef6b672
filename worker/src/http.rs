//! The worker's small HTTP port: `/healthz`, `/readyz`, `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tirage_core::codes::ErrorCode;

use crate::context::Ctx;

pub(crate) fn router(ctx: Arc<Ctx>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ctx)
}

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// 200 only when Redis, the broker and S3 all answer; otherwise 503 naming each failure.
async fn readyz(State(ctx): State<Arc<Ctx>>) -> Response {
    let limit = Duration::from_secs(2);
    let ports = &ctx.ports;
    let (state, queue, objects) = tokio::join!(
        tokio::time::timeout(limit, ports.state.ping()),
        tokio::time::timeout(limit, ports.queue.ping()),
        tokio::time::timeout(limit, ports.objects.ping()),
    );
    let mut failing = Vec::new();
    let mut check = |name: &str, r: Result<Result<(), String>, tokio::time::error::Elapsed>| match r
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failing.push(format!("{name}: {e}")),
        Err(_) => failing.push(format!("{name}: no answer within {}s", limit.as_secs())),
    };
    check("state_store", state.map(|r| r.map_err(|e| e.to_string())));
    check("job_queue", queue.map(|r| r.map_err(|e| e.to_string())));
    check(
        "object_store",
        objects.map(|r| r.map_err(|e| e.to_string())),
    );
    if failing.is_empty() {
        axum::Json(json!({"status": "ready"})).into_response()
    } else {
        let code = ErrorCode::DependencyUnavailable.as_str();
        let body = json!({"error": {"code": code, "message": failing.join("; ")}});
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

async fn metrics(State(ctx): State<Arc<Ctx>>) -> Response {
    match ctx.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            let body = json!({"error": {"code": "metrics_unavailable", "message": e.to_string()}});
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
        }
    }
}
