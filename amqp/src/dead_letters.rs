//! The dead-letter queue as an operator sees it ([`DeadLetters`]): messages taken with
//! `basic.get` on a channel of their own and never acknowledged are read in place (closing
//! the channel hands them all back); one replayed is acknowledged only once its copy on its
//! lane is confirmed, so a failure in between leaves it parked (a replay twice is a
//! duplicate job, which every job survives).

use async_trait::async_trait;
use lapin::Channel;
use lapin::message::BasicGetMessage;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use tirage_ports::DeadLetter;
use tirage_ports::dead_letters::{DeadLetters, Select};
use tirage_ports::job_queue::{QueueError, WorkItem};

use crate::connection::unavailable;
use crate::{AmqpQueue, message};

impl AmqpQueue {
    /// The next dead letter on `channel`, left unacknowledged.
    async fn next_dead(&self, channel: &Channel) -> Result<Option<BasicGetMessage>, QueueError> {
        let queue = self.connection.settings.dead_queue();
        channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await
            .map_err(unavailable)
    }
}

fn letter(got: &BasicGetMessage) -> DeadLetter {
    DeadLetter {
        body: got.delivery.data.clone(),
        attempt: message::attempt_of(&got.delivery.properties),
        reason: message::reason_of(&got.delivery.properties),
    }
}

#[async_trait]
impl DeadLetters for AmqpQueue {
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let channel = self.connection.link().await?.channel().await?;
        let mut letters = Vec::new();
        while letters.len() < limit {
            let Some(got) = self.next_dead(&channel).await? else {
                break;
            };
            letters.push(letter(&got));
        }
        // Every message taken goes back to the queue, in its place.
        let _ = channel.close(200, "read".into()).await;
        Ok(letters)
    }

    async fn replay_dead_letters(
        &self,
        limit: usize,
        select: Select<'_>,
    ) -> Result<Vec<WorkItem>, QueueError> {
        let channel = self.connection.link().await?.channel().await?;
        let mut replayed = Vec::new();
        for _ in 0..limit {
            let Some(got) = self.next_dead(&channel).await? else {
                break;
            };
            let parked = letter(&got);
            let Some(item) = parked.item().filter(|item| select(item)) else {
                continue;
            };
            self.connection
                .publish_job(
                    item.lane(),
                    &parked.body,
                    // A replayed job continues the trace it was first published in.
                    &message::trace_of(&got.delivery.properties),
                )
                .await?;
            got.delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(unavailable)?;
            replayed.push(item);
        }
        // The letters not replayed go back to the queue, in their place.
        let _ = channel.close(200, "replayed".into()).await;
        Ok(replayed)
    }
}
