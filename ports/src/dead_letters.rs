//! What an operator needs of the job queue's dead letters (`tirage-worker admin
//! dead-letters`): to read them without taking them, and to put chosen ones back to work.
//! Every [`JobQueue`] provides it.
//!
//! [`JobQueue`]: crate::JobQueue

use async_trait::async_trait;

use crate::work_item::{QueueError, WorkItem};

/// A message the queue gave up on, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message exactly as it was published: a [`WorkItem`]'s JSON, or bytes that never
    /// parsed as one.
    pub body: Vec<u8>,
    /// The attempt it had reached.
    pub attempt: u32,
    /// `malformed: …` for messages that did not parse, else the consumer's reason.
    pub reason: String,
}

impl DeadLetter {
    /// The work item parked, when its body parses as one.
    pub fn item(&self) -> Option<WorkItem> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Which dead letters to replay: given each parked item, true for those to put back.
pub type Select<'a> = &'a (dyn Fn(&WorkItem) -> bool + Send + Sync);

#[async_trait]
pub trait DeadLetters: Send + Sync + 'static {
    /// The dead letters, oldest first, at most `limit`. They stay parked.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError>;

    /// Among the first `limit` dead letters, publishes again every one whose item `select`
    /// picks, on its lane as a first attempt (confirmed), and only then removes it from the
    /// dead letters; the others stay parked, in their order. A letter that does not parse is
    /// never replayed. Returns the items replayed.
    async fn replay_dead_letters(
        &self,
        limit: usize,
        select: Select<'_>,
    ) -> Result<Vec<WorkItem>, QueueError>;
}
