//! The stop signal every process obeys: SIGTERM (what orchestrators and service managers
//! send) or Ctrl-C. What stopping means is each process's own: the API drains requests,
//! the worker drains jobs.

/// Resolves when the process is asked to stop.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only"),
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        // Without any signal handler the process can only be killed; keep serving.
        tracing::warn!(error = %e, "cannot listen for Ctrl-C either");
        std::future::pending::<()>().await;
    }
}

/// Resolves on SIGUSR1 (`tirage-worker admin drain`); never where there is no such signal.
pub async fn drain_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::user_defined1()) {
            Ok(mut usr1) => {
                usr1.recv().await;
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGUSR1; no drain signal"),
        }
    }
    std::future::pending::<()>().await;
}
