//! The consumer side: a stream of parsed deliveries from one lane's work queue (what does not
//! parse is dead-lettered on the way), and the handle that settles each delivery.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};

use super::connection::{LazyConnection, unavailable};
use super::message;
use tirage_ports::TraceContext;
use tirage_ports::job_queue::{Delivery, DeliveryHandle, JobStream, Lane, QueueError, WorkItem};

pub(super) struct AmqpStream {
    connection: Arc<LazyConnection>,
    lane: Lane,
    channel: Channel,
    consumer: Consumer,
    finished: bool,
}

impl AmqpStream {
    /// Starts consuming a lane's work queue on a channel of its own, with `prefetch` unacked
    /// deliveries at most.
    pub async fn open(
        connection: Arc<LazyConnection>,
        lane: Lane,
        prefetch: u16,
    ) -> Result<Self, QueueError> {
        let channel = connection.link().await?.channel().await?;
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(unavailable)?;
        let consumer = channel
            .basic_consume(
                connection.settings.work_queue(lane).as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        Ok(AmqpStream {
            connection,
            lane,
            channel,
            consumer,
            finished: false,
        })
    }

    /// Dead-letters a message that does not parse, then acks it; when parking fails it is
    /// handed back to the broker instead, so it is never lost.
    async fn park_malformed(
        &self,
        delivery: lapin::message::Delivery,
        attempt: u32,
        error: &serde_json::Error,
    ) -> Result<(), QueueError> {
        tracing::warn!(error = %error, "dead-lettering a message that does not parse");
        let reason = format!("malformed: {error}");
        let parked = self
            .connection
            .dead_letter(
                &delivery.data,
                attempt,
                &message::trace_of(&delivery.properties),
                &reason,
            )
            .await;
        let settled = match parked {
            Ok(()) => delivery.acker.ack(BasicAckOptions::default()).await,
            Err(_) => {
                delivery
                    .acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await
            }
        };
        parked?;
        settled.map(drop).map_err(unavailable)
    }
}

#[async_trait]
impl JobStream for AmqpStream {
    async fn next(&mut self) -> Option<Result<Delivery, QueueError>> {
        while !self.finished {
            let delivery = match self.consumer.next().await {
                None => {
                    self.finished = true;
                    return None;
                }
                Some(Err(e)) => {
                    self.finished = true;
                    return Some(Err(unavailable(e)));
                }
                Some(Ok(delivery)) => delivery,
            };
            let attempt = message::attempt_of(&delivery.properties);
            let retry_spent = message::retry_spent_of(&delivery.properties, SystemTime::now());
            let trace = message::trace_of(&delivery.properties);
            match serde_json::from_slice::<WorkItem>(&delivery.data) {
                Ok(item) => {
                    return Some(Ok(Delivery {
                        item,
                        attempt,
                        retry_spent,
                        redelivered: delivery.redelivered,
                        trace: trace.clone(),
                        handle: Box::new(AmqpHandle {
                            connection: self.connection.clone(),
                            lane: self.lane,
                            acker: delivery.acker,
                            body: delivery.data,
                            attempt,
                            trace,
                        }),
                    }));
                }
                Err(e) => {
                    if let Err(e) = self.park_malformed(delivery, attempt, &e).await {
                        return Some(Err(e));
                    }
                }
            }
        }
        None
    }
}

impl Drop for AmqpStream {
    fn drop(&mut self) {
        // Closing the channel hands every unsettled delivery back to the broker, exactly as
        // if this consumer's connection had died.
        let channel = self.channel.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = channel.close(200, "consumer dropped".into()).await;
            });
        }
    }
}

struct AmqpHandle {
    connection: Arc<LazyConnection>,
    /// Where a retry waits: the delay queue of the lane the delivery came from.
    lane: Lane,
    acker: lapin::Acker,
    body: Vec<u8>,
    attempt: u32,
    trace: TraceContext,
}

impl AmqpHandle {
    /// Acks the delivery once its message is safely published elsewhere (the delay or the
    /// dead-letter queue). When that publish failed, hands the delivery straight back to
    /// the queue instead: it must never stay unsettled, holding a prefetch slot until the
    /// consumer restarts, and the job is idempotent, so another attempt is harmless.
    async fn settle_after(&self, republished: Result<(), QueueError>) -> Result<(), QueueError> {
        match republished {
            Ok(()) => self.settle(None).await,
            Err(e) => {
                if let Err(requeue) = self.settle(Some(true)).await {
                    tracing::warn!(error = %requeue, "could not hand the delivery back either");
                }
                Err(e)
            }
        }
    }

    /// Acks (`None`) or nacks the delivery.
    async fn settle(&self, requeue: Option<bool>) -> Result<(), QueueError> {
        let done = match requeue {
            None => self.acker.ack(BasicAckOptions::default()).await,
            Some(requeue) => {
                self.acker
                    .nack(BasicNackOptions {
                        requeue,
                        ..Default::default()
                    })
                    .await
            }
        }
        .map_err(unavailable)?;
        if done {
            Ok(())
        } else {
            Err(QueueError::Unavailable(
                "the delivery's channel is closed; the broker will redeliver it".into(),
            ))
        }
    }
}

#[async_trait]
impl DeliveryHandle for AmqpHandle {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        self.settle(None).await
    }

    async fn requeue(self: Box<Self>) -> Result<(), QueueError> {
        self.settle(Some(true)).await
    }

    async fn retry_later(
        self: Box<Self>,
        delay: Duration,
        spent: Duration,
    ) -> Result<(), QueueError> {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).max(1);
        let props = message::retried(self.attempt.saturating_add(1), &self.trace, spent)
            .with_expiration(ms.to_string().into());
        let republished = self
            .connection
            .publish_to_queue(
                &self.connection.settings.delay_queue(self.lane),
                &self.body,
                props,
            )
            .await;
        self.settle_after(republished).await
    }

    async fn dead_letter(self: Box<Self>, reason: &str) -> Result<(), QueueError> {
        let parked = self
            .connection
            .dead_letter(&self.body, self.attempt, &self.trace, reason)
            .await;
        self.settle_after(parked).await
    }
}
