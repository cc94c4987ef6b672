//! `tirage upload <DIR|FILES>... [--server URL] [--sizes ...] [--format ...] [--out DIR]
//! [--zip FILE] [--concurrency N]`: sends photos to a Tirage server and brings the
//! renditions back.
//!
//! Creates a session and a batch; uploads with bounded concurrency ([`transfer`]); closes
//! the batch; follows its event stream (or polls) until it completes ([`watch`]); downloads
//! every rendition to `<out>/<stem>_<size>.<ext>` ([`download`]) and, with `--zip`, the
//! batch's archive of them all ([`archive`]; then `--out` only when given). Every request is retried
//! on network errors, 5xx and 429 (`crate::client`). Each rendition is written to a temp
//! file in `--out` and renamed into place, and Ctrl-C removes the temp files, so `--out`
//! never holds half a file.
//!
//! Exit codes: 0 every photo done; 1 some photo failed (one line per file on stderr);
//! 2 bad usage or options; 3 the server could not be used; 130 interrupted.

mod archive;
mod download;
mod inputs;
mod options;
mod outcome;
mod progress;
mod transfer;
mod watch;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

pub use options::UploadArgs;
use outcome::{Summary, UploadError};
use progress::Bars;

use crate::client::{Client, ClientError};
use tirage_core::codes::ProcessCode;

pub fn run(args: UploadArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {}: {e}", ProcessCode::RuntimeFailed);
            return ExitCode::from(3);
        }
    };
    let started = Instant::now();
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = upload(&args) => Some(r),
            () = tirage_runtime::shutdown::signal() => None,
        }
    });
    // Dropping the runtime waits for the file writes in flight: each either lands whole
    // under its final name or its temp file is removed.
    drop(runtime);
    outcome::report(
        outcome,
        &args.destination(),
        started.elapsed().as_secs_f64(),
    )
}

async fn upload(args: &UploadArgs) -> Result<Summary, UploadError> {
    let request = args.batch_request()?;
    let retry = args.retry_policy()?;
    let out_dir = args.out_dir();
    if let Some(out) = &out_dir {
        std::fs::create_dir_all(out).map_err(|e| UploadError::Io {
            path: out.display().to_string(),
            message: e.to_string(),
        })?;
    }
    let mut failures = Vec::new();
    let inputs = inputs::collect(&args.inputs, &mut failures);
    let mut summary = Summary::default();
    if inputs.is_empty() {
        if failures.is_empty() {
            return Err(UploadError::Options(
                "no photos found in the inputs (directories are searched for JPEG, PNG, WebP, GIF, HEIC and AVIF files)".into(),
            ));
        }
        summary.failures = failures;
        return Ok(summary);
    }

    let mut client = Client::new(&args.server, retry)?;
    client.create_session(args.api_key.as_deref()).await?;
    let batch = client.create_batch(&request).await?;

    let bars = Bars::new(inputs.iter().map(|i| i.size).sum(), inputs.len() as u64);
    let watcher = tokio::spawn(watch::watch(client.clone(), batch.id, bars.photos.clone()));
    // Whatever happens next, the watcher must not outlive this function.
    let _abort_on_drop = AbortOnDrop(watcher.abort_handle());

    let accepted = transfer::upload_all(
        &client,
        batch.id,
        &inputs,
        args.multipart,
        args.concurrency(),
        &bars,
        &mut failures,
    )
    .await?;
    bars.bytes.finish();
    client.close_batch(batch.id).await?;
    let completed = watcher.await.map_err(|e| UploadError::Server {
        e: ClientError::Protocol(format!("the progress watcher failed: {e}")),
    })??;
    bars.photos.finish();

    let photos = client.list_photos(batch.id).await?;
    summary.warnings = download::warnings_of(&photos, &accepted, &inputs);
    let jobs = download::renditions_to_fetch(&photos, &accepted, &inputs, &mut failures);
    let in_archive = jobs.len();
    if let Some(out) = &out_dir {
        summary.renditions = download::download_all(
            &client,
            jobs,
            &inputs,
            out,
            completed.format.extension(),
            args.concurrency(),
            &mut failures,
        )
        .await;
    }
    if let Some(zip) = &args.zip {
        archive::save(&client, batch.id, zip).await?;
        if out_dir.is_none() {
            summary.renditions = in_archive;
        }
    }
    let failed_paths: HashSet<&PathBuf> = failures.iter().map(|f| &f.path).collect();
    summary.photos = inputs
        .iter()
        .filter(|i| !failed_paths.contains(&i.path))
        .count();
    summary.failures = failures;
    Ok(summary)
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
