//! The one readiness check every process answers `/readyz` with (the API and the worker):
//! the three ports pinged at once, each given the same time to answer, and the answer in
//! the wire's `Readiness` shape.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tirage_core::codes::ErrorCode;
use tirage_core::wire::{ErrorDetail, Readiness};

use crate::ports::Ports;

/// `Ok` when `ping` answers within `timeout`, else why not.
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

/// Pings every port of `ports`; ready when all answer within `timeout`. Each failure is
/// logged and named in `checks`, and the answer's `error` lists the failing ports.
pub async fn readiness(ports: &Ports, timeout: Duration) -> Readiness {
    let (state, queue, objects) = futures::join!(
        check(timeout, ports.state.ping()),
        check(timeout, ports.queue.ping()),
        check(timeout, ports.objects.ping()),
    );
    let mut checks = BTreeMap::new();
    let mut failing = Vec::new();
    for (name, result) in [
        (&ports.names.state, state),
        (&ports.names.queue, queue),
        (&ports.names.objects, objects),
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
        Readiness {
            status: "ready".into(),
            checks,
            error: None,
        }
    } else {
        Readiness {
            status: "unavailable".into(),
            checks,
            error: Some(ErrorDetail {
                code: ErrorCode::DependencyUnavailable.as_str().into(),
                message: format!("unavailable: {}", failing.join(", ")),
            }),
        }
    }
}
