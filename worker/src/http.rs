//! The worker's small HTTP port: `/healthz`, `/readyz`, `/metrics`, on actix-web like the
//! API's (one web framework in the workspace). One HTTP worker thread is plenty for probes
//! and scrapes; the server stops when the worker does (no signal handling of its own).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use tirage_core::codes::ErrorCode;

use crate::context::Ctx;

/// How long the port lets a request in flight finish once the worker stops.
const STOP_GRACE_SECS: u64 = 5;

/// The server on `listener`; it serves once polled (spawn it) until its handle stops it.
pub(crate) fn server(ctx: Arc<Ctx>, listener: TcpListener) -> std::io::Result<Server> {
    let ctx = web::Data::from(ctx);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(ctx.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(STOP_GRACE_SECS)
    .listen(listener)?
    .run();
    Ok(server)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 only when Redis, the broker and S3 all answer; otherwise 503 naming each failure
/// (or `draining`, once the worker takes no new job).
async fn readyz(ctx: web::Data<Ctx>) -> HttpResponse {
    if ctx.draining.is_cancelled() {
        let code = ErrorCode::Draining;
        let message = "this worker takes no new job: it was drained, or is stopping";
        let body =
            json!({"status": "draining", "error": {"code": code.as_str(), "message": message}});
        return HttpResponse::ServiceUnavailable().json(body);
    }
    let timeout = Duration::from_millis(ctx.settings.readiness_timeout_ms);
    let readiness = tirage_runtime::readiness(&ctx.ports, timeout).await;
    if readiness.error.is_none() {
        HttpResponse::Ok().json(readiness)
    } else {
        HttpResponse::ServiceUnavailable().json(readiness)
    }
}

async fn metrics(ctx: web::Data<Ctx>) -> HttpResponse {
    match ctx.metrics.render() {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Err(e) => {
            let code = ErrorCode::InternalError.as_str();
            let body = json!({"error": {"code": code, "message": e.to_string()}});
            HttpResponse::InternalServerError().json(body)
        }
    }
}
