//! The clients: what they upload (drawn from the seed's `workload` stream) and how, one task
//! per batch, calling the API's use cases on a replica drawn per request, as `tirage upload`
//! does over HTTP: create the batch (with a callback URL in about a third of the batches);
//! stream its photos in one
//! or two uploads, each with its own `Idempotency-Key`, the whole request retried with the
//! same key on a 5xx answer or when it takes longer than the client waits; then close the
//! batch, retried until it answers `Ok`; about one client in seven then deletes its batch,
//! up to 20 s later, retried the same way. A refusal no well-behaved client can get (409,
//! 413, 500, …) is a problem of the run, not something to retry.
//!
//! The replica's route would first read the batch (`extract::owned_batch`) and the upload's
//! parts; the client does both itself here, through the replica's ports.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tirage_api::ApiError;
use tirage_api::AppState;
use tirage_api::usecases::batches;
use tirage_api::usecases::streamed::StreamedUpload;
use tirage_core::codes::ErrorCode;
use tirage_core::{BatchOptions, MetadataChoice, OutputFormat};
use uuid::Uuid;

use crate::engine::{Fate, photo_bytes};
use crate::ledger::{Ledger, PhotoInfo};
use crate::replicas::Replicas;
use crate::rng::Stream;

/// Attempts of one request before the client gives up (and the run reports it).
const MAX_ATTEMPTS: u32 = 500;

#[derive(Debug, Clone)]
pub struct PhotoPlan {
    pub fate: Fate,
    pub cpu_ms: u16,
    pub bytes: Bytes,
    /// Chunks the body arrives in.
    pub chunks: usize,
    pub tag: (u16, u16),
}

#[derive(Debug, Clone)]
pub struct BatchPlan {
    pub index: u16,
    pub label: String,
    pub start_after: Duration,
    pub options: BatchOptions,
    /// One or two uploads (none for an empty batch).
    pub uploads: Vec<Vec<PhotoPlan>>,
    /// How long after closing it the client deletes the batch, if it does.
    pub delete_after: Option<Duration>,
}

const SIZES: [u32; 5] = [64, 160, 320, 640, 1280];

/// Whether the seed is one of the backlog runs (about one in six): more and larger batches,
/// run on at most two nodes against a stall threshold a half to a third of the queue's
/// length (see `world`), as 10 minutes against a half-hour backlog in production. Drawn
/// from a stream of its own, so the other seeds' workloads do not depend on it.
pub fn backlog_profile(seed: u64) -> bool {
    Stream::derive(seed, "workload/backlog").chance(0.15)
}

/// The seed's batches: 1 to 4, of 0 to 12 photos each; in a backlog run 3 to 6, of 12 to 40.
pub fn draw(seed: u64) -> Vec<BatchPlan> {
    let rng = Stream::derive(seed, "workload");
    let backlog = backlog_profile(seed);
    let batches = if backlog {
        rng.range(3, 6)
    } else {
        rng.range(1, 4)
    };
    (0..batches)
        .map(|b| {
            let index = u16::try_from(b).unwrap_or(u16::MAX);
            let mut sizes: Vec<u32> = SIZES.iter().copied().filter(|_| rng.chance(0.5)).collect();
            if sizes.is_empty() {
                sizes.push(SIZES[rng.usize_in(0, SIZES.len() - 1)]);
            }
            sizes.truncate(3);
            let format = OutputFormat::ALL[rng.usize_in(0, OutputFormat::ALL.len() - 1)];
            let count = if backlog {
                rng.usize_in(12, 40)
            } else {
                rng.usize_in(0, 12)
            };
            let photos: Vec<PhotoPlan> = (0..count)
                .map(|p| {
                    let roll = rng.fraction();
                    let fate = if roll < 0.8 {
                        Fate::Ok
                    } else if roll < 0.9 {
                        Fate::Corrupt
                    } else {
                        Fate::Panic
                    };
                    let cpu_ms = u16::try_from(rng.range(5, 1500)).unwrap_or(1500);
                    let w = u16::try_from(rng.range(100, 6000)).unwrap_or(6000);
                    let h = u16::try_from(rng.range(100, 6000)).unwrap_or(6000);
                    let tag = (index, u16::try_from(p).unwrap_or(u16::MAX));
                    let padding = rng.usize_in(0, 300);
                    PhotoPlan {
                        fate,
                        cpu_ms,
                        bytes: Bytes::from(photo_bytes(fate, cpu_ms, (w, h), tag, padding)),
                        chunks: rng.usize_in(1, 3),
                        tag,
                    }
                })
                .collect();
            let uploads = match photos.len() {
                0 => Vec::new(),
                1 => vec![photos],
                _ if rng.chance(0.5) => vec![photos],
                n => {
                    let split = rng.usize_in(1, n - 1);
                    let mut first = photos;
                    let second = first.split_off(split);
                    vec![first, second]
                }
            };
            // Drawn from a stream of its own, so the other draws do not depend on it.
            let deletes = Stream::derive(seed, &format!("workload/delete/b{b}"));
            let delete_after = deletes.chance(0.15).then(|| deletes.millis(0, 20_000));
            BatchPlan {
                index,
                delete_after,
                label: format!("b{b}"),
                start_after: rng.millis(0, 5_000),
                options: BatchOptions {
                    sizes,
                    format,
                    quality: 85,
                    metadata: MetadataChoice::Strip,
                },
                uploads,
            }
        })
        .collect()
}

/// How a client answers an error: try the same request again, or report it.
fn retryable(e: &ApiError) -> bool {
    let code = e.code();
    code == ErrorCode::TooManyUploads || (code.is_server_side() && code != ErrorCode::InternalError)
}

/// One client, working through one batch.
pub struct Client {
    pub plan: BatchPlan,
    pub replicas: Arc<Replicas>,
    pub ledger: Arc<Ledger>,
    pub rng: Stream,
    /// How long the client waits for one request.
    pub timeout: Duration,
    /// The batch, once created: the refusals it meets concern it.
    pub batch: std::cell::Cell<Option<Uuid>>,
    /// Where its batch calls back, if it does ([`crate::receivers`]).
    pub callback_url: Option<String>,
}

enum Attempt<T> {
    Done(T),
    Refused,
}

impl Client {
    fn actor(&self) -> String {
        format!("c{}", self.plan.index)
    }

    /// The wait before attempt `n + 1`.
    fn backoff(&self, n: u32) -> Duration {
        let base = 100u64.saturating_mul(1 << n.min(5));
        Duration::from_millis(base.min(3_000) + self.rng.range(0, 100))
    }

    /// Runs one request until it answers `Ok`, a refusal, or too many attempts.
    async fn request<T, F, Fut>(&self, what: &str, subject: &str, call: F) -> Attempt<T>
    where
        F: Fn(Arc<AppState>, u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let actor = self.actor();
        for n in 1..=MAX_ATTEMPTS {
            let replica = self.replicas.pick(&self.rng);
            let attempt = tokio::time::timeout(self.timeout, call(replica.app.clone(), n));
            // A replica that dies cuts its requests: the proxy answers 502.
            let answered = tokio::select! {
                biased;
                () = replica.life.killed() => None,
                answer = attempt => Some(answer),
            };
            let Some(answered) = answered else {
                self.ledger
                    .note(&actor, what, subject, "cut: its replica died");
                self.ledger.count("client_cuts");
                tokio::time::sleep(self.backoff(n)).await;
                continue;
            };
            match answered {
                Ok(Ok(value)) => {
                    self.ledger.note(&actor, what, subject, "ok");
                    return Attempt::Done(value);
                }
                Ok(Err(e)) if retryable(&e) => {
                    self.ledger
                        .note(&actor, what, subject, &format!("error {}", e.code()));
                    self.ledger.count("client_retries");
                }
                Ok(Err(e)) => {
                    self.ledger.problem_of(
                        self.batch.get(),
                        format!("{actor}: {what} {subject} refused: {} ({e})", e.code()),
                    );
                    return Attempt::Refused;
                }
                Err(_) => {
                    self.ledger.note(&actor, what, subject, "timed out");
                    self.ledger.count("client_timeouts");
                }
            }
            tokio::time::sleep(self.backoff(n)).await;
        }
        self.ledger.problem_of(
            self.batch.get(),
            format!("{actor}: {what} {subject} still failing after {MAX_ATTEMPTS} attempts"),
        );
        Attempt::Refused
    }

    pub async fn run(self) {
        tokio::time::sleep(self.plan.start_after).await;
        let label = self.plan.label.clone();
        let owner = format!("sim-session-{label}");
        let created = self
            .request("create", &label, |app, _| {
                let (owner, options) = (owner.clone(), self.plan.options.clone());
                let callback = self.callback_url.clone();
                async move { batches::create(&app, owner, "sim-client", options, callback).await }
            })
            .await;
        let Attempt::Done(batch) = created else {
            return;
        };
        let expires_at = crate::clock::since_start(batch.expires_at);
        self.ledger
            .register_batch(batch.id, label.clone(), expires_at);
        self.batch.set(Some(batch.id));
        let mut numbered = 0u16;
        let mut uploads = Vec::new();
        for (u, photos) in self.plan.uploads.iter().enumerate() {
            let key = format!("sim-{label}-u{u}");
            let mut ids = Vec::new();
            for (j, photo) in photos.iter().enumerate() {
                // The id the API derives for the `j`-th photo of an upload with this key
                // (usecases/streamed.rs `new_photo_id`).
                let id = Uuid::new_v5(&batch.id, format!("{key}#{j}").as_bytes());
                self.ledger.register_photo(
                    id,
                    PhotoInfo {
                        label: format!("{label}p{numbered}"),
                        batch: batch.id,
                        fate: photo.fate,
                        cpu_ms: u64::from(photo.cpu_ms),
                        tag: photo.tag,
                    },
                );
                numbered += 1;
                ids.push(id);
            }
            uploads.push((key, photos, ids));
        }
        for (key, photos, ids) in uploads {
            let subject = format!("{label}/{key}");
            let uploaded = self
                .request("upload", &subject, |app, attempt| {
                    let (key, batch_id) = (key.clone(), batch.id);
                    async move { upload(&app, batch_id, key, photos, attempt).await }
                })
                .await;
            if let Attempt::Done(accepted) = uploaded {
                if accepted != ids {
                    self.ledger.problem(format!(
                        "{}: upload {subject} answered other photo ids than the client derived",
                        self.actor()
                    ));
                }
                self.ledger.accepted(&accepted);
            }
        }
        let closed = self
            .request("close", &label, |app, _| {
                let batch_id = batch.id;
                async move { batches::close(&app, batch_id).await }
            })
            .await;
        if let Attempt::Done(_) = closed {
            self.ledger.closed(batch.id);
        }
        if let Some(after) = self.plan.delete_after {
            tokio::time::sleep(after).await;
            let deleted = self
                .request("delete", &label, |app, _| {
                    let batch_id = batch.id;
                    async move { batches::delete(&app, batch_id).await }
                })
                .await;
            if let Attempt::Done(()) = deleted {
                self.ledger.deleted(batch.id);
            }
        }
    }
}

/// One attempt of an upload request: the batch as the route reads it, then every part,
/// then registration and publishing. Abandoned (its unregistered originals deleted) when a
/// part fails, as the route does.
async fn upload(
    app: &AppState,
    batch_id: Uuid,
    key: String,
    photos: &[PhotoPlan],
    attempt: u32,
) -> Result<Vec<Uuid>, ApiError> {
    let batch = app
        .ports
        .state
        .get_batch(batch_id)
        .await?
        .ok_or(ApiError::BatchNotFound)?;
    let request_id = format!("{key}-a{attempt}");
    let payer = tirage_ports::Payer {
        session_id: &batch.owner,
        address: "sim-client",
    };
    let mut upload = StreamedUpload::start(app, &batch, payer, Some(key)).await?;
    for (j, photo) in photos.iter().enumerate() {
        let size = photo.bytes.len().div_ceil(photo.chunks).max(1);
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..photo.bytes.len())
            .step_by(size)
            .map(|at| Ok(photo.bytes.slice(at..(at + size).min(photo.bytes.len()))))
            .collect();
        let mut body = futures::stream::iter(chunks);
        let filename = format!("photo-{j}.sim");
        if let Err(e) = upload.add(filename, "image/jpeg", &mut body).await {
            upload.abandon().await;
            return Err(e);
        }
    }
    let records = upload.finish(&request_id).await?;
    Ok(records.iter().map(|r| r.id).collect())
}
