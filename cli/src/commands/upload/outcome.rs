//! How a run ends: the error that stops it as a whole, or the totals and per-file failures,
//! printed and turned into the exit code.

use std::path::Path;
use std::process::ExitCode;

use crate::client::ClientError;
use crate::inputs::Failure;

/// The run failed as a whole (the per-file failures are reported separately).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("invalid_options: {0}")]
    Options(String),
    #[error("{}: {e}", e.code())]
    Server { e: ClientError },
    #[error("io_error: {path}: {message}")]
    Io { path: String, message: String },
}

impl From<ClientError> for UploadError {
    fn from(e: ClientError) -> Self {
        match &e {
            // The server refused the batch options: the user's to fix.
            ClientError::Api { status: 422, .. } => UploadError::Options(e.to_string()),
            _ => UploadError::Server { e },
        }
    }
}

/// A request for one file failed: the file is reported with the request's code.
pub fn file_failure(path: &Path, e: &ClientError) -> Failure {
    Failure::new(path, e.code(), e.to_string())
}

/// Totals printed at the end.
#[derive(Debug, Default)]
pub struct Summary {
    pub photos: usize,
    pub renditions: usize,
    pub failures: Vec<Failure>,
    /// `warning: …` lines for photos done that the owner should look at.
    pub warnings: Vec<String>,
}

/// Prints how the run ended. Exit codes: 0 every photo done; 1 some photo failed (one line
/// per file on stderr); 2 bad usage or options; 3 the server could not be used; 130
/// interrupted.
pub fn report(outcome: Option<Result<Summary, UploadError>>, out: &str, seconds: f64) -> ExitCode {
    match outcome {
        None => {
            eprintln!("interrupted: nothing half-written was left in {out}");
            ExitCode::from(130)
        }
        Some(Err(e)) => {
            eprintln!("error: {e}");
            match e {
                UploadError::Options(_) => ExitCode::from(2),
                _ => ExitCode::from(3),
            }
        }
        Some(Ok(summary)) => {
            for f in &summary.failures {
                f.report();
            }
            for line in &summary.warnings {
                eprintln!("{line}");
            }
            println!(
                "{} photos, {} renditions in {out}, {} failed, {seconds:.2} s",
                summary.photos,
                summary.renditions,
                summary.failures.len()
            );
            if summary.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}
