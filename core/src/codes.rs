//! The words Tirage's processes exchange about a photo and a batch, as enums with one table
//! each: why a photo failed ([`FailureCode`]), which side effects a completed batch runs
//! ([`Effect`]), why a photo done deserves a second look ([`PhotoWarning`]), what the HTTP API answers when a request fails ([`ErrorCode`]) and why a process could not
//! start or stopped ([`ProcessCode`]). The
//! engine, the worker, the API and the CLI all name them through these types; the tables
//! are what the API's error docs, OpenAPI and README list.

use serde::{Deserialize, Serialize};

mod error_code;
mod photo_warning;
mod process_code;
pub use error_code::ErrorCode;
pub use photo_warning::PhotoWarning;
pub use process_code::ProcessCode;

/// Why a photo ended `failed`. Stable snake_case strings on the wire and in the state store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The bytes are no JPEG, PNG, WebP, GIF, HEIC or AVIF.
    UnsupportedFormat,
    /// The decoder refused the bytes.
    CorruptImage,
    /// Width × height is above the pixel limit.
    TooManyPixels,
    /// The file is above the byte limit.
    TooLarge,
    /// The batch's resize options cannot be applied (the API checks them first).
    InvalidOptions,
    /// The job message itself names nothing usable (malformed batch or photo id).
    InvalidJob,
    /// The original is not in the object store (expired or deleted before the resize).
    SourceMissing,
    /// The object store refused a read or write for a reason retrying cannot fix.
    StorageError,
    /// A bug or an unexpected state in Tirage itself; logged with details.
    InternalError,
    /// Transient failures (S3, Redis, broker) outlasted the retry budget.
    RetriesExhausted,
    /// The API stored the original but could not hand its job to the broker.
    EnqueueFailed,
    /// Workers died while resizing this photo, as many times as the crash limit allows (an
    /// input that exhausts a worker's memory, or crashes a decoder).
    WorkerCrashed,
}

impl FailureCode {
    /// Every code with its meaning: the one table the docs and OpenAPI list.
    pub const TABLE: &'static [(FailureCode, &'static str)] = &[
        (
            FailureCode::UnsupportedFormat,
            "the file is no JPEG, PNG, WebP, GIF, HEIC or AVIF",
        ),
        (
            FailureCode::CorruptImage,
            "the image data cannot be decoded",
        ),
        (
            FailureCode::TooManyPixels,
            "width x height is above the pixel limit",
        ),
        (FailureCode::TooLarge, "the file is above the byte limit"),
        (
            FailureCode::InvalidOptions,
            "the batch's resize options cannot be applied",
        ),
        (
            FailureCode::InvalidJob,
            "the resize job names no valid batch or photo",
        ),
        (
            FailureCode::SourceMissing,
            "the uploaded original is no longer in storage",
        ),
        (
            FailureCode::StorageError,
            "the object store refused a read or write",
        ),
        (FailureCode::InternalError, "an unexpected error in Tirage"),
        (
            FailureCode::RetriesExhausted,
            "transient failures outlasted the retry budget (`[worker] retry_for_ms`)",
        ),
        (
            FailureCode::EnqueueFailed,
            "the photo was stored but its job could not be queued",
        ),
        (
            FailureCode::WorkerCrashed,
            "workers died resizing this photo, every time it was tried",
        ),
    ];

    /// The stable string, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::UnsupportedFormat => "unsupported_format",
            FailureCode::CorruptImage => "corrupt_image",
            FailureCode::TooManyPixels => "too_many_pixels",
            FailureCode::TooLarge => "too_large",
            FailureCode::InvalidOptions => "invalid_options",
            FailureCode::InvalidJob => "invalid_job",
            FailureCode::SourceMissing => "source_missing",
            FailureCode::StorageError => "storage_error",
            FailureCode::InternalError => "internal_error",
            FailureCode::RetriesExhausted => "retries_exhausted",
            FailureCode::EnqueueFailed => "enqueue_failed",
            FailureCode::WorkerCrashed => "worker_crashed",
        }
    }

    /// What the code means, in words a person reads.
    pub fn description(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|(code, _)| *code == self)
            .map_or("", |(_, text)| text)
    }

    /// The code a stored string names, if any.
    pub fn parse(s: &str) -> Option<FailureCode> {
        Self::TABLE
            .iter()
            .map(|(code, _)| *code)
            .find(|code| code.as_str() == s)
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<FailureCode> for String {
    fn from(code: FailureCode) -> String {
        code.as_str().to_owned()
    }
}

/// A side effect of a completed batch, run once each by the finalisation job and recorded
/// in the state store so a redelivered finalisation does not repeat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The `batch.completed` message on the events exchange.
    Event,
    /// The POST to the batch's `callback_url`.
    Callback,
}

impl Effect {
    /// Every effect with its meaning, in the order the finalisation runs them.
    pub const TABLE: &'static [(Effect, &'static str)] = &[
        (
            Effect::Event,
            "the batch.completed message on the events exchange",
        ),
        (
            Effect::Callback,
            "the signed POST to the batch's callback_url",
        ),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Event => "event",
            Effect::Callback => "callback",
        }
    }
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_code_is_in_the_table_once_and_round_trips() {
        let mut seen = std::collections::HashSet::new();
        for (code, description) in FailureCode::TABLE {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert!(!description.is_empty());
            assert_eq!(FailureCode::parse(code.as_str()), Some(*code));
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
            assert_eq!(serde_json::from_value::<FailureCode>(json).unwrap(), *code);
        }
        assert_eq!(FailureCode::parse("no_such_code"), None);
    }

    #[test]
    fn the_readme_lists_every_code_and_effect() {
        let readme = include_str!("../../README.md");
        for (code, description) in FailureCode::TABLE {
            let row = format!("| `{code}` | {description} |");
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
        for (effect, description) in Effect::TABLE {
            let row = format!("| `{effect}` | {description} |");
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
        for (warning, description) in PhotoWarning::TABLE {
            let row = format!("| `{warning}` | {description} |");
            assert!(readme.contains(&row), "README lacks the row {row}");
            let json = serde_json::to_value(warning).unwrap();
            assert_eq!(json, warning.as_str());
        }
    }

    #[test]
    fn effects_serialize_as_their_names() {
        for (effect, _) in Effect::TABLE {
            assert_eq!(serde_json::to_value(effect).unwrap(), effect.as_str());
        }
    }
}
