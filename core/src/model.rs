//! Wire formats shared by the API, the workers and the CLI. Every type here crosses a
//! process boundary (HTTP, AMQP or Redis) as JSON, so field names are part of the contract.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codes::{FailureCode, PhotoWarning};

mod media_type;
mod options;

pub use media_type::*;
pub use options::*;

/// One resize job: the message the API publishes for every photo and a worker consumes.
/// Everything a worker needs is in it, so any worker can take any job. The original's key
/// is not: it is derived from the ids where it is read ([`ResizeJob::original_key`]), so no
/// message can name another object. (Messages of earlier versions carry a `source_key`;
/// it is ignored.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResizeJob {
    pub batch_id: Uuid,
    pub photo_id: Uuid,
    pub options: BatchOptions,
    /// The request id of the upload that created the job, so one photo can be followed
    /// from upload to rendition in the logs.
    #[serde(default)]
    pub request_id: Option<String>,
    pub published_at: DateTime<Utc>,
}

impl ResizeJob {
    /// The one way a photo's job is made: with its batch's options, published at `now`.
    pub fn new(
        batch: &Batch,
        photo_id: Uuid,
        request_id: Option<String>,
        now: DateTime<Utc>,
    ) -> ResizeJob {
        ResizeJob {
            batch_id: batch.id,
            photo_id,
            options: batch.options.clone(),
            request_id,
            published_at: now,
        }
    }

    /// Where the photo's original is stored.
    pub fn original_key(&self) -> String {
        crate::keys::original_key(self.batch_id, self.photo_id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhotoState {
    Queued,
    Done,
    Failed,
}

/// One stored rendition of a photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendition {
    /// The requested size (short side); the key of the rendition.
    pub size: u32,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// The first 128 bits of the SHA-256 of the rendition's bytes, in hex ([`Rendition::digest_of`]):
    /// its strong `ETag`. Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Rendition {
    /// The digest a rendition of these bytes carries.
    pub fn digest_of(data: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(data)[..16])
    }
}

/// The result a worker records for a photo, exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum PhotoOutcome {
    Done {
        width: u32,
        height: u32,
        renditions: Vec<Rendition>,
        /// What the owner should know although it rendered; absent when none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<PhotoWarning>,
    },
    Failed {
        /// Why, as a stable snake_case code such as `corrupt_image` or `retries_exhausted`.
        code: FailureCode,
    },
}

/// What the system knows about one photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRecord {
    pub id: Uuid,
    /// The client's file name, kept only as a label: it never names a stored object.
    pub filename: String,
    pub state: PhotoState,
    /// Why the photo failed. Read strictly: a stored code this build does not know makes the
    /// record unreadable (the state store reports it corrupt, the API answers 500) rather
    /// than showing a made-up code.
    pub error: Option<FailureCode>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub outputs: Vec<Rendition>,
    /// What the owner should know of a photo done (a truncated original); absent when none,
    /// and in records written before warnings existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<PhotoWarning>,
}

impl PhotoRecord {
    pub fn queued(id: Uuid, filename: impl Into<String>) -> Self {
        PhotoRecord {
            id,
            filename: filename.into(),
            state: PhotoState::Queued,
            error: None,
            width: None,
            height: None,
            outputs: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchState {
    /// Accepting photos.
    Open,
    /// Closed; photos still being resized.
    Processing,
    /// Closed and done + failed = total.
    Completed,
}

/// A batch as stored and as served (minus `owner` and `callback_url`, which the API hides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub id: Uuid,
    /// The session that created the batch; any other session gets 404.
    pub owner: String,
    pub state: BatchState,
    pub options: BatchOptions,
    pub callback_url: Option<String>,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Published once to the `tirage.events` exchange (routing key `batch.completed`) and POSTed
/// to the batch's callback URL when a closed batch reaches done + failed = total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCompleted {
    pub event: String,
    pub batch_id: Uuid,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    pub created_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
}

impl BatchCompleted {
    pub const EVENT: &'static str = "batch.completed";
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_job_names_its_original_by_its_ids_whatever_an_older_message_said() {
        let (batch_id, photo_id) = (Uuid::new_v4(), Uuid::new_v4());
        // A message of an earlier version, naming another batch's object.
        let old = serde_json::json!({
            "batch_id": batch_id,
            "photo_id": photo_id,
            "source_key": format!("originals/{}/x", Uuid::new_v4()),
            "options": BatchOptions::default(),
            "published_at": Utc::now(),
        });
        let job: ResizeJob = serde_json::from_value(old).unwrap();
        assert_eq!(
            job.original_key(),
            crate::keys::original_key(batch_id, photo_id)
        );
        let sent = serde_json::to_value(&job).unwrap();
        assert!(sent.get("source_key").is_none(), "{sent}");
    }
    #[test]
    fn outcome_is_tagged_by_state() {
        let json = serde_json::to_value(PhotoOutcome::Failed {
            code: FailureCode::CorruptImage,
        })
        .unwrap();
        assert_eq!(json["state"], "failed");
        assert_eq!(json["code"], "corrupt_image");
    }
    #[test]
    fn stored_failure_codes_read_back_and_unknown_ones_are_refused() {
        let stored = |code: &str| {
            serde_json::json!({
                "id": Uuid::nil(), "filename": "a.jpg", "state": "failed", "error": code,
                "width": null, "height": null, "outputs": [],
            })
        };
        let record: PhotoRecord = serde_json::from_value(stored("source_missing")).unwrap();
        assert_eq!(record.error, Some(FailureCode::SourceMissing));
        assert_eq!(
            serde_json::to_value(&record).unwrap(),
            stored("source_missing")
        );
        assert!(serde_json::from_value::<PhotoRecord>(stored("no_such_code")).is_err());
        let outcome = serde_json::json!({"state": "failed", "code": "no_such_code"});
        assert!(serde_json::from_value::<PhotoOutcome>(outcome).is_err());
    }
}
