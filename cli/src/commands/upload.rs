//! `tirage upload <DIR|FILES>... [--server URL] [--sizes ...] [--format ...] [--out DIR]
//! [--concurrency N]`: sends photos to a Tirage server and brings the renditions back.
//!
//! Creates a session and a batch; uploads with bounded concurrency, through presigned URLs
//! when the server hands them out (`POST /uploads`, `PUT`, then `complete`) and multipart
//! otherwise; closes the batch; follows its event stream (or polls) until it completes;
//! downloads every rendition to `<out>/<stem>_<size>.<ext>`. Every request is retried on
//! network errors, 5xx and 429. Each rendition is written to a temp file in `--out` and
//! renamed into place, and Ctrl-C removes the temp files, so `--out` never holds half a file.
//!
//! Exit codes: 0 every photo done; 1 some photo failed (one line per file on stderr);
//! 2 bad usage or options; 3 the server could not be used; 130 interrupted.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::json;
use tirage_engine::{SourceFormat, sniff};
use tirage_shared::{BatchOptions, OutputFormat};
use uuid::Uuid;

use crate::client::{
    BatchView, Client, ClientError, PhotoView, PhotosAccepted, RetryPolicy, SseParser,
    UploadTicket, UploadsCreated,
};

/// Largest file list sent in one `POST /uploads` (the server's default limit is 500).
const TICKETS_PER_REQUEST: usize = 100;
/// Pieces a body is sent in, so the byte bar moves while a file uploads.
const BODY_CHUNK: usize = 64 * 1024;
/// How often the fallback poller asks for the batch.
const POLL_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Photos, or directories whose images (recursively) are all uploaded.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The Tirage server (a cluster's nginx or `tirage standalone`).
    #[arg(long, env = "TIRAGE_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Short side of each rendition, in pixels (default: the server's, 1080,720,360).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<u32>>,
    /// Output format: jpeg, webp or png (default: the server's, jpeg).
    #[arg(long)]
    pub format: Option<OutputFormat>,
    /// Encoder quality, 1..=100 (default: the server's, 85).
    #[arg(long)]
    pub quality: Option<u8>,
    /// Directory the renditions are written to (created if missing).
    #[arg(long, default_value = "tirage-out")]
    pub out: PathBuf,
    /// Files uploaded (and renditions downloaded) at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Send files through the API as multipart even when presigned URLs are offered.
    #[arg(long)]
    pub multipart: bool,
    /// API key, when the server requires one to create a session.
    #[arg(long, env = "TIRAGE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Attempts per request before giving up (network errors, 5xx, 429).
    #[arg(long, default_value_t = 6)]
    pub attempts: u32,
}

/// One input file and what became of it.
#[derive(Debug, Clone)]
struct Input {
    path: PathBuf,
    stem: String,
    size: u64,
    content_type: &'static str,
}

/// Why one file has no renditions.
#[derive(Debug, Clone)]
struct Failure {
    path: PathBuf,
    code: String,
    message: String,
}

impl Failure {
    fn new(path: &Path, code: &str, message: impl Into<String>) -> Self {
        Failure {
            path: path.to_path_buf(),
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn from_client(path: &Path, e: &ClientError) -> Self {
        Failure::new(path, e.code(), e.to_string())
    }
}

/// The run failed as a whole (the per-file failures are reported separately).
#[derive(Debug, thiserror::Error)]
enum UploadError {
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

/// Totals printed at the end.
#[derive(Debug, Default)]
struct Summary {
    photos: usize,
    renditions: usize,
    failures: Vec<Failure>,
}

pub fn run(args: UploadArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: runtime_failed: {e}");
            return ExitCode::from(3);
        }
    };
    let started = Instant::now();
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = upload(&args) => Some(r),
            () = super::standalone::wait_for_signal() => None,
        }
    });
    // Dropping the runtime waits for the file writes in flight: each either lands whole
    // under its final name or its temp file is removed.
    drop(runtime);
    match outcome {
        None => {
            eprintln!(
                "interrupted: nothing half-written was left in {}",
                args.out.display()
            );
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
                eprintln!("error: {}: {}: {}", f.path.display(), f.code, f.message);
            }
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{} photos, {} renditions in {}, {} failed, {seconds:.2} s",
                summary.photos,
                summary.renditions,
                args.out.display(),
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

fn content_type_of(path: &Path, head: &[u8]) -> &'static str {
    match sniff(head) {
        Some(SourceFormat::Jpeg) => "image/jpeg",
        Some(SourceFormat::Png) => "image/png",
        Some(SourceFormat::Webp) => "image/webp",
        Some(SourceFormat::Gif) => "image/gif",
        // Not an image by its signature: sent anyway when named explicitly, so the server
        // reports it with its own code; the type is an image one because the presigned
        // path accepts nothing else.
        None => match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => "image/png",
            Some("webp") => "image/webp",
            Some("gif") => "image/gif",
            _ => "image/jpeg",
        },
    }
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; 12];
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    head.truncate(n);
    Ok(head)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, failures: &mut Vec<Failure>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            failures.push(Failure::new(dir, "io_error", e.to_string()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, found, failures);
        } else if read_head(&path).is_ok_and(|h| sniff(&h).is_some()) {
            found.push(path);
        }
    }
}

/// Named files are taken as they are; directories contribute the files whose first bytes
/// are an image signature. Empty files and clashing stems fail here, before any upload.
fn collect_inputs(inputs: &[PathBuf], failures: &mut Vec<Failure>) -> Vec<Input> {
    let mut paths = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found, failures);
            found.sort();
            paths.extend(found);
        } else {
            paths.push(input.clone());
        }
    }
    let mut stems = HashSet::new();
    let mut out = Vec::new();
    for path in paths {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let (size, head) =
            match std::fs::metadata(&path).and_then(|m| Ok((m.len(), read_head(&path)?))) {
                Ok(x) => x,
                Err(e) => {
                    failures.push(Failure::new(&path, "io_error", e.to_string()));
                    continue;
                }
            };
        if size == 0 {
            failures.push(Failure::new(&path, "empty_file", "the file is empty"));
            continue;
        }
        // Two inputs with one stem would overwrite each other's renditions.
        if !stems.insert(stem.clone()) {
            failures.push(Failure::new(
                &path,
                "duplicate_name",
                format!("another input already writes {stem}_<size> files"),
            ));
            continue;
        }
        let content_type = content_type_of(&path, &head);
        out.push(Input {
            path,
            stem,
            size,
            content_type,
        });
    }
    out
}

fn bar_style(template: &str) -> Option<ProgressStyle> {
    ProgressStyle::with_template(template).ok()
}

struct Bars {
    _multi: MultiProgress,
    bytes: ProgressBar,
    photos: ProgressBar,
}

impl Bars {
    fn new(total_bytes: u64, photos: u64) -> Bars {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let bytes = multi.add(ProgressBar::new(total_bytes));
        if let Some(style) =
            bar_style("uploaded  {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        {
            bytes.set_style(style);
        }
        let processed = multi.add(ProgressBar::new(photos));
        if let Some(style) = bar_style("processed {bar:40} {pos}/{len} photos {msg}") {
            processed.set_style(style);
        }
        Bars {
            _multi: multi,
            bytes,
            photos: processed,
        }
    }
}

/// A body sent in pieces; the byte bar advances as pieces go out. A retry starts by taking
/// back what the previous attempt had counted, so the bar never counts a byte twice.
fn counted_body(data: &Bytes, bar: &ProgressBar, counted: &Arc<AtomicU64>) -> reqwest::Body {
    bar.dec(counted.swap(0, Ordering::Relaxed));
    let pieces: Vec<Bytes> = (0..data.len())
        .step_by(BODY_CHUNK)
        .map(|start| data.slice(start..(start + BODY_CHUNK).min(data.len())))
        .collect();
    let bar = bar.clone();
    let counted = counted.clone();
    reqwest::Body::wrap_stream(futures::stream::iter(pieces).map(move |piece| {
        bar.inc(piece.len() as u64);
        counted.fetch_add(piece.len() as u64, Ordering::Relaxed);
        Ok::<Bytes, std::io::Error>(piece)
    }))
}

async fn read_file(input: &Input) -> Result<Bytes, Failure> {
    tokio::fs::read(&input.path)
        .await
        .map(Bytes::from)
        .map_err(|e| Failure::new(&input.path, "io_error", e.to_string()))
}

/// Uploads one file as one multipart request; returns its photo id.
async fn upload_multipart(
    client: &Client,
    batch: Uuid,
    input: &Input,
    bar: &ProgressBar,
) -> Result<Uuid, Failure> {
    let data = read_file(input).await?;
    let counted = Arc::new(AtomicU64::new(0));
    let filename = input
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| input.stem.clone());
    // The same key on every retry: a retry after a lost answer registers the same photo
    // instead of a second one.
    let idempotency_key = Uuid::new_v4().to_string();
    let accepted: PhotosAccepted = client
        .send_json(|| {
            let part = reqwest::multipart::Part::stream_with_length(
                counted_body(&data, bar, &counted),
                data.len() as u64,
            )
            .file_name(filename.clone());
            let part = match part.mime_str(input.content_type) {
                Ok(p) => p,
                // Every type we send is a valid literal; this branch cannot lose data.
                Err(_) => {
                    reqwest::multipart::Part::bytes(data.to_vec()).file_name(filename.clone())
                }
            };
            client
                .request(Method::POST, &format!("/v1/batches/{batch}/photos"))
                .header("Idempotency-Key", &idempotency_key)
                .multipart(reqwest::multipart::Form::new().part("file", part))
        })
        .await
        .map_err(|e| Failure::from_client(&input.path, &e))?;
    accepted
        .photos
        .first()
        .map(|p| p.id)
        .ok_or_else(|| Failure::new(&input.path, "protocol_error", "no photo in the answer"))
}

/// PUTs one file to its presigned URL, then completes it.
async fn upload_presigned(
    client: &Client,
    batch: Uuid,
    input: &Input,
    ticket: &UploadTicket,
    bar: &ProgressBar,
) -> Result<Uuid, Failure> {
    let data = read_file(input).await?;
    let counted = Arc::new(AtomicU64::new(0));
    let method = Method::from_bytes(ticket.method.as_bytes()).unwrap_or(Method::PUT);
    client
        .send(|| {
            let mut request = client
                .external(method.clone(), &ticket.url)
                .header(reqwest::header::CONTENT_LENGTH, data.len())
                .body(counted_body(&data, bar, &counted));
            for (name, value) in &ticket.headers {
                request = request.header(name.as_str(), value.as_str());
            }
            request
        })
        .await
        .map_err(|e| Failure::from_client(&input.path, &e))?;
    let path = format!("/v1/batches/{batch}/photos/{}/complete", ticket.photo_id);
    client
        .send(|| client.request(Method::POST, &path))
        .await
        .map_err(|e| Failure::from_client(&input.path, &e))?;
    Ok(ticket.photo_id)
}

/// Asks for presigned URLs for `files`. `Ok(None)` when the server has no such endpoint.
async fn request_tickets(
    client: &Client,
    batch: Uuid,
    files: &[&Input],
) -> Result<Option<Vec<UploadTicket>>, ClientError> {
    let body = json!({
        "files": files.iter().map(|f| json!({
            "filename": f.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            "size": f.size,
            "content_type": f.content_type,
        })).collect::<Vec<_>>()
    });
    let path = format!("/v1/batches/{batch}/uploads");
    match client
        .send_json::<UploadsCreated>(|| client.request(Method::POST, &path).json(&body))
        .await
    {
        Ok(created) if created.uploads.len() == files.len() => Ok(Some(created.uploads)),
        Ok(created) => Err(ClientError::Protocol(format!(
            "asked for {} upload URLs, got {}",
            files.len(),
            created.uploads.len()
        ))),
        Err(ClientError::Api {
            status: 404 | 405 | 501,
            code,
            ..
        }) if code != "batch_not_found" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Uploads every input; returns photo id → input index for those the server accepted.
async fn upload_all(
    client: &Client,
    batch: Uuid,
    inputs: &[Input],
    args: &UploadArgs,
    bars: &Bars,
    failures: &mut Vec<Failure>,
) -> Result<HashMap<Uuid, usize>, UploadError> {
    let concurrency = args.concurrency.max(1);
    let mut accepted = HashMap::new();
    let mut presigned = !args.multipart;
    for chunk_start in (0..inputs.len()).step_by(TICKETS_PER_REQUEST) {
        let chunk: Vec<usize> =
            (chunk_start..(chunk_start + TICKETS_PER_REQUEST).min(inputs.len())).collect();
        // Index → ticket, when the presigned path is in use for this chunk.
        let mut tickets: HashMap<usize, UploadTicket> = HashMap::new();
        if presigned {
            let files: Vec<&Input> = chunk.iter().map(|&i| &inputs[i]).collect();
            match request_tickets(client, batch, &files).await {
                Ok(Some(list)) => tickets.extend(chunk.iter().copied().zip(list)),
                Ok(None) => presigned = false,
                // One bad file (too large, say) refuses the whole list: ask file by file so
                // the refusal lands on the right one.
                Err(ClientError::Api {
                    status: 409 | 413 | 422,
                    ..
                }) if files.len() > 1 => {
                    for &i in &chunk {
                        match request_tickets(client, batch, &[&inputs[i]]).await {
                            Ok(Some(mut one)) if one.len() == 1 => {
                                if let Some(t) = one.pop() {
                                    tickets.insert(i, t);
                                }
                            }
                            Ok(_) => {}
                            Err(
                                e @ ClientError::Api {
                                    status: 409 | 413 | 422,
                                    ..
                                },
                            ) => {
                                failures.push(Failure::from_client(&inputs[i].path, &e));
                                bars.bytes.dec_length(inputs[i].size);
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    if tickets.is_empty() {
                        continue;
                    }
                }
                Err(
                    e @ ClientError::Api {
                        status: 409 | 413 | 422,
                        ..
                    },
                ) => {
                    for &i in &chunk {
                        failures.push(Failure::from_client(&inputs[i].path, &e));
                        bars.bytes.dec_length(inputs[i].size);
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let tickets = &tickets;
        let todo: Vec<usize> = chunk
            .iter()
            .copied()
            .filter(|i| !presigned || tickets.contains_key(i))
            .collect();
        let results: Vec<(usize, Result<Uuid, Failure>)> = futures::stream::iter(todo)
            .map(|i| async move {
                let input = &inputs[i];
                let result = match tickets.get(&i) {
                    Some(ticket) => {
                        upload_presigned(client, batch, input, ticket, &bars.bytes).await
                    }
                    None => upload_multipart(client, batch, input, &bars.bytes).await,
                };
                (i, result)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for (i, result) in results {
            match result {
                Ok(id) => {
                    accepted.insert(id, i);
                }
                Err(f) => {
                    bars.bytes.dec_length(inputs[i].size);
                    failures.push(f);
                }
            }
        }
    }
    Ok(accepted)
}

fn show_progress(bar: &ProgressBar, batch: &BatchView) {
    bar.set_length(batch.total);
    bar.set_position(batch.done + batch.failed);
    if batch.failed > 0 {
        bar.set_message(format!("({} failed)", batch.failed));
    }
}

/// Follows the batch until it completes: its event stream while that works, polling after.
async fn watch(client: Client, batch: Uuid, bar: ProgressBar) -> Result<BatchView, ClientError> {
    let path = format!("/v1/batches/{batch}/events");
    let mut short_streams = 0u32;
    while short_streams < 3 {
        let response = match client
            .send(|| {
                client
                    .request(Method::GET, &path)
                    .header(reqwest::header::ACCEPT, "text/event-stream")
            })
            .await
        {
            Ok(r) => r,
            // The batch itself is gone or the session is: polling would fail the same way.
            Err(e @ ClientError::Api { status: 401, .. }) => return Err(e),
            Err(e @ ClientError::Api { status: 404, .. }) if e.code() == "batch_not_found" => {
                return Err(e);
            }
            Err(e) => {
                tracing::debug!(error = %e, "no event stream; polling instead");
                break;
            }
        };
        let opened = Instant::now();
        let mut parser = SseParser::default();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            for event in parser.push(&chunk) {
                match event.event.as_str() {
                    "progress" | "completed" => {
                        if let Ok(view) = serde_json::from_str::<BatchView>(&event.data) {
                            show_progress(&bar, &view);
                            if view.is_completed() {
                                return Ok(view);
                            }
                        }
                    }
                    "error" => {
                        return Err(ClientError::Protocol(format!(
                            "the event stream failed: {}",
                            event.data
                        )));
                    }
                    _ => {}
                }
            }
        }
        // Streams live a bounded time; reconnect, unless they keep ending at once.
        if opened.elapsed() < Duration::from_secs(2) {
            short_streams += 1;
        }
    }
    loop {
        let view = client.get_batch(batch).await?;
        show_progress(&bar, &view);
        if view.is_completed() {
            return Ok(view);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn extension_of(format: &str) -> &'static str {
    format
        .parse::<OutputFormat>()
        .map(OutputFormat::extension)
        .unwrap_or("img")
}

/// Writes `data` to `<dir>/<name>` through a temp file in `dir`: the final name appears
/// only once the bytes are all on disk, and a temp file whose write is abandoned is removed.
fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tirage-").suffix(".part");
    // Renditions are ordinary files (the umask applies), not private temp files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir)?;
    temp.write_all(data)?;
    temp.as_file().sync_all()?;
    temp.persist(dir.join(name)).map_err(|e| e.error)?;
    Ok(())
}

/// Downloads every rendition of the accepted photos; returns how many were written.
async fn download_all(
    client: &Client,
    photos: &[PhotoView],
    accepted: &HashMap<Uuid, usize>,
    inputs: &[Input],
    args: &UploadArgs,
    ext: &'static str,
    failures: &mut Vec<Failure>,
) -> usize {
    let out = args.out.as_path();
    let mut jobs = Vec::new();
    let mut seen = HashSet::new();
    for photo in photos {
        let Some(&i) = accepted.get(&photo.id) else {
            continue;
        };
        seen.insert(photo.id);
        let input = &inputs[i];
        match photo.state.as_str() {
            "done" => {
                for output in &photo.outputs {
                    jobs.push((i, output.clone()));
                }
            }
            _ => failures.push(Failure::new(
                &input.path,
                photo.error.as_deref().unwrap_or("not_processed"),
                format!("the server could not resize {}", photo.filename),
            )),
        }
    }
    for (id, &i) in accepted {
        if !seen.contains(id) {
            failures.push(Failure::new(
                &inputs[i].path,
                "photo_missing",
                "the batch does not list this photo",
            ));
        }
    }
    let results: Vec<Result<(), Failure>> = futures::stream::iter(jobs)
        .map(|(i, output)| async move {
            let input = &inputs[i];
            let response = client
                .send(|| client.request(Method::GET, &output.url))
                .await
                .map_err(|e| Failure::from_client(&input.path, &e))?;
            let data = response
                .bytes()
                .await
                .map_err(|e| Failure::new(&input.path, "network_error", e.to_string()))?;
            let name = format!("{}_{}.{ext}", input.stem, output.size);
            let dir = out.to_path_buf();
            tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &data))
                .await
                .map_err(|e| Failure::new(&input.path, "io_error", e.to_string()))?
                .map_err(|e| Failure::new(&input.path, "io_error", e.to_string()))
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let mut written = 0;
    for r in results {
        match r {
            Ok(()) => written += 1,
            Err(f) => failures.push(f),
        }
    }
    written
}

fn batch_body(args: &UploadArgs) -> Result<serde_json::Value, UploadError> {
    let defaults = BatchOptions::default();
    let options = BatchOptions {
        sizes: args.sizes.clone().unwrap_or(defaults.sizes),
        format: args.format.unwrap_or(defaults.format),
        quality: args.quality.unwrap_or(defaults.quality),
    };
    // Checked here too, so a typo is reported before anything is sent.
    options.validate().map_err(|e| UploadError::Options(e.0))?;
    let mut body = serde_json::Map::new();
    if let Some(sizes) = &args.sizes {
        body.insert("sizes".into(), json!(sizes));
    }
    if let Some(format) = args.format {
        body.insert("format".into(), json!(format));
    }
    if let Some(quality) = args.quality {
        body.insert("quality".into(), json!(quality));
    }
    Ok(serde_json::Value::Object(body))
}

async fn upload(args: &UploadArgs) -> Result<Summary, UploadError> {
    let body = batch_body(args)?;
    if args.attempts == 0 {
        return Err(UploadError::Options("--attempts must be at least 1".into()));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| UploadError::Io {
        path: args.out.display().to_string(),
        message: e.to_string(),
    })?;
    let mut failures = Vec::new();
    let inputs = collect_inputs(&args.inputs, &mut failures);
    let mut summary = Summary::default();
    if inputs.is_empty() {
        if failures.is_empty() {
            return Err(UploadError::Options(
                "no photos found in the inputs (directories are searched for JPEG, PNG, WebP and GIF files)".into(),
            ));
        }
        summary.failures = failures;
        return Ok(summary);
    }

    let retry = RetryPolicy {
        attempts: args.attempts,
        ..RetryPolicy::default()
    };
    let mut client = Client::new(&args.server, retry)?;
    client.create_session(args.api_key.as_deref()).await?;
    let batch = client.create_batch(&body).await?;

    let bars = Bars::new(inputs.iter().map(|i| i.size).sum(), inputs.len() as u64);
    let watcher = tokio::spawn(watch(client.clone(), batch.id, bars.photos.clone()));
    // Whatever happens next, the watcher must not outlive this function.
    let abort = watcher.abort_handle();
    let _abort_on_drop = AbortOnDrop(abort);

    let accepted = upload_all(&client, batch.id, &inputs, args, &bars, &mut failures).await?;
    bars.bytes.finish();
    client.close_batch(batch.id).await?;
    let completed = watcher.await.map_err(|e| UploadError::Server {
        e: ClientError::Protocol(format!("the progress watcher failed: {e}")),
    })??;
    bars.photos.finish();

    let photos = client.list_photos(batch.id).await?;
    let ext = extension_of(&completed.format);
    summary.renditions = download_all(
        &client,
        &photos,
        &accepted,
        &inputs,
        args,
        ext,
        &mut failures,
    )
    .await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_only_the_final_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomically(dir.path(), "a_360.jpg", b"abc").unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a_360.jpg".to_owned()]);
        assert_eq!(std::fs::read(dir.path().join("a_360.jpg")).unwrap(), b"abc");
    }

    #[test]
    fn inputs_refuse_empty_files_and_clashing_stems() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(dir.path().join("a.jpg"), [0xFF, 0xD8, 0xFF, 0xE0]).unwrap();
        std::fs::write(sub.join("a.png"), b"\x89PNG\r\n\x1a\n....").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        let empty = dir.path().join("empty.jpg");
        std::fs::write(&empty, b"").unwrap();
        let mut failures = Vec::new();
        let inputs = collect_inputs(&[dir.path().to_path_buf(), empty], &mut failures);
        assert_eq!(inputs.len(), 1, "{inputs:?}");
        assert_eq!(inputs[0].content_type, "image/jpeg");
        let codes: Vec<&str> = failures.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, vec!["duplicate_name", "empty_file"]);
    }

    #[test]
    fn batch_options_are_checked_before_sending() {
        let args = |sizes: Option<Vec<u32>>| UploadArgs {
            inputs: vec![],
            server: String::new(),
            sizes,
            format: None,
            quality: None,
            out: PathBuf::new(),
            concurrency: 1,
            multipart: false,
            api_key: None,
            attempts: 1,
        };
        assert!(matches!(
            batch_body(&args(Some(vec![5]))),
            Err(UploadError::Options(_))
        ));
        assert_eq!(batch_body(&args(None)).unwrap(), json!({}));
        assert_eq!(
            batch_body(&args(Some(vec![640]))).unwrap(),
            json!({"sizes": [640]})
        );
    }
}
