//! What every case uses: the harness an adapter provides, and the fixtures.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use tirage_core::codes::{FailureCode, PhotoWarning};
use tirage_core::model::{Batch, BatchOptions, BatchState, PhotoOutcome, PhotoRecord, Rendition};
use tirage_ports::StateStore;

/// What a contract run needs besides the store itself.
#[async_trait]
pub trait StateHarness: Send + Sync + 'static {
    fn store(&self) -> Arc<dyn StateStore>;
    /// Lets `d` pass as the store sees time: moves a manual clock, or sleeps for a server.
    async fn pass(&self, d: Duration);
    /// Asserts that everything stored for `batch` is set to expire at `batch.expires_at`
    /// (Redis: the `PTTL` of every key; memory: covered by [`StateHarness::pass`]).
    async fn assert_batch_expiry(&self, batch: &Batch);
    /// Asserts that nothing this harness stored lives forever.
    async fn assert_everything_expires(&self);
}

/// Creates `batch` with no cap on its owner's open batches (what most cases need).
pub(super) async fn create(store: &dyn StateStore, batch: &Batch) {
    store
        .create_batch(batch, tirage_ports::Cap::Unlimited)
        .await
        .unwrap();
}

/// Milliseconds precision, as every adapter stores it.
pub(super) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

pub fn new_batch(expires_in: Duration) -> Batch {
    let now = ms(Utc::now());
    Batch {
        id: Uuid::new_v4(),
        owner: format!("session-{}", Uuid::new_v4()),
        state: BatchState::Open,
        options: BatchOptions::default(),
        callback_url: Some("https://example.com/hook".into()),
        total: 0,
        done: 0,
        failed: 0,
        created_at: now,
        expires_at: now + chrono::Duration::from_std(expires_in).unwrap_or_default(),
    }
}

pub fn photos(n: usize) -> Vec<PhotoRecord> {
    (0..n)
        .map(|i| PhotoRecord::queued(Uuid::new_v4(), format!("IMG_{i:04}.jpg")))
        .collect()
}

pub fn done() -> PhotoOutcome {
    PhotoOutcome::Done {
        width: 3840,
        height: 2160,
        renditions: vec![
            Rendition {
                size: 1080,
                width: 1920,
                height: 1080,
                bytes: 512_000,
                digest: Some(Rendition::digest_of(b"the 1080 rendition")),
            },
            Rendition {
                size: 360,
                width: 640,
                height: 360,
                bytes: 40_000,
                // A record from before digests existed.
                digest: None,
            },
        ],
        warnings: vec![PhotoWarning::Truncated],
    }
}

pub fn failed(code: FailureCode) -> PhotoOutcome {
    PhotoOutcome::Failed { code }
}

pub(super) const HOUR: Duration = Duration::from_secs(3600);
