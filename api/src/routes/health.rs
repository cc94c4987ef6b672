//! Operations: liveness, readiness and metrics.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use tirage_core::codes::ErrorCode;
use tirage_core::wire::{ErrorDetail, Readiness};

use crate::error::ApiError;
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn check<E: std::fmt::Display>(
    timeout: Duration,
    ping: impl Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, ping).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// Readiness: 200 only when the state store, the job queue and the object store all answer.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Every dependency answers", body = Readiness),
        (status = 503, description = "A dependency failed; `error.message` and `checks` name it", body = Readiness),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let timeout = state.settings.api.readiness_timeout();
    let ports = &state.ports;
    let (s, q, o) = futures::join!(
        check(timeout, ports.state.ping()),
        check(timeout, ports.queue.ping()),
        check(timeout, ports.objects.ping()),
    );
    let mut checks = BTreeMap::new();
    let mut failing = Vec::new();
    for (name, result) in [
        (&ports.names.state, s),
        (&ports.names.queue, q),
        (&ports.names.objects, o),
    ] {
        match result {
            Ok(()) => {
                checks.insert(name.clone(), "ok".to_owned());
            }
            Err(why) => {
                tracing::warn!(dependency = %name, error = %why, "not ready");
                failing.push(name.clone());
                checks.insert(name.clone(), why);
            }
        }
    }
    if failing.is_empty() {
        HttpResponse::Ok().json(Readiness {
            status: "ready".into(),
            checks,
            error: None,
        })
    } else {
        HttpResponse::ServiceUnavailable().json(Readiness {
            status: "unavailable".into(),
            checks,
            error: Some(ErrorDetail {
                code: ErrorCode::DependencyUnavailable.as_str().into(),
                message: format!("unavailable: {}", failing.join(", ")),
            }),
        })
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state
        .metrics
        .render()
        .map_err(|e| ApiError::Internal(format!("cannot render metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
