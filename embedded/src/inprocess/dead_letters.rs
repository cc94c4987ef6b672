//! The in-process queue's dead letters as an operator sees them ([`DeadLetters`]): read in
//! place, and chosen ones put back on their lane as first attempts.

use std::time::Duration;

use async_trait::async_trait;
use tirage_ports::dead_letters::{DeadLetters, Select};
use tirage_ports::job_queue::{QueueError, WorkItem};
use tirage_ports::{DeadLetter, TraceContext};

use super::{InProcessQueue, Message};

#[async_trait]
impl DeadLetters for InProcessQueue {
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self
            .shared
            .lock()
            .dead
            .iter()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn replay_dead_letters(
        &self,
        limit: usize,
        select: Select<'_>,
    ) -> Result<Vec<WorkItem>, QueueError> {
        let mut replayed = Vec::new();
        let mut state = self.shared.lock();
        let mut kept = std::collections::VecDeque::with_capacity(state.dead.len());
        for (index, letter) in std::mem::take(&mut state.dead).into_iter().enumerate() {
            match letter.item() {
                Some(item) if index < limit && select(&item) => {
                    replayed.push((item, letter.body));
                }
                _ => kept.push_back(letter),
            }
        }
        state.dead = kept;
        drop(state);
        Ok(replayed
            .into_iter()
            .map(|(item, body)| {
                self.shared.push(Message {
                    lane: item.lane(),
                    body,
                    attempt: 1,
                    retry_spent: Duration::ZERO,
                    redelivered: false,
                    // The in-process queue keeps no trace with its dead letters.
                    trace: TraceContext::none(),
                });
                item
            })
            .collect())
    }
}
