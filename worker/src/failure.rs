//! Why a step of a job failed, in the three kinds the retry decision knows: worth another
//! attempt, final for this photo, or moot because the batch is gone.

use tirage_core::codes::FailureCode;
use tirage_ports::completion::HandOffError;
use tirage_ports::{ObjectStoreError, QueueError, StateError};

#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth trying again later: a dependency did not answer.
    Transient(String),
    /// The same input fails the same way: record the photo failed with this code.
    Permanent(FailureCode, String),
    /// The batch no longer exists (deleted or expired): nothing to do.
    Gone,
}

impl From<ObjectStoreError> for Failure {
    fn from(e: ObjectStoreError) -> Self {
        if e.is_transient() {
            Failure::Transient(e.to_string())
        } else {
            Failure::Permanent(FailureCode::StorageError, e.to_string())
        }
    }
}

impl From<StateError> for Failure {
    fn from(e: StateError) -> Self {
        match e {
            StateError::NotFound => Failure::Gone,
            e if e.is_transient() => Failure::Transient(e.to_string()),
            e => Failure::Permanent(FailureCode::InternalError, e.to_string()),
        }
    }
}

impl From<QueueError> for Failure {
    fn from(e: QueueError) -> Self {
        // A refused publish is the broker protecting itself (a full queue, an alarm): it
        // may well accept the same message later.
        Failure::Transient(e.to_string())
    }
}

impl From<HandOffError> for Failure {
    fn from(e: HandOffError) -> Self {
        match e {
            HandOffError::State(e) => e.into(),
            HandOffError::Queue(e) => e.into(),
        }
    }
}
