//! `tirage-api`: loads settings, installs JSON logs (and the trace export when `OTEL_*`
//! asks), serves until SIGTERM, exits 0.

use std::process::ExitCode;

use tirage_api::{Application, Settings};
use tirage_runtime::telemetry::{self, LogOutput};

#[actix_web::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tirage-api: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(&settings.log, LogOutput::Stdout, "tirage-api") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tirage-api: {e}");
            return ExitCode::from(2);
        }
    };
    let code = serve(settings).await;
    telemetry.shutdown();
    code
}

async fn serve(settings: Settings) -> ExitCode {
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(port = app.port(), "tirage-api listening");
    match app.run_until_stopped().await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
