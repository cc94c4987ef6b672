//! What the queue declares on the broker, all durable:
//! - `{prefix}.resize` — the work queue; persistent messages, manual acks, `basic.qos` prefetch.
//! - `{prefix}.resize.delay` — retries wait here with a per-message `expiration`, then
//!   dead-letter back into the work queue. RabbitMQ only expires messages at the head of a
//!   queue, so a short delay queued behind a longer one comes back late, never early.
//! - `{prefix}.resize.dead` — messages given up on (attempts exhausted, or unparsable), with
//!   the reason in the `x-tirage-dead-reason` header.
//! - the events topic exchange (default `tirage.events`).

use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use secrecy::SecretString;
use serde::Deserialize;

fn default_prefix() -> String {
    "tirage".to_owned()
}

fn default_exchange() -> String {
    "tirage.events".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSettings {
    /// `amqp://user:password@host:5672/%2f` (a secret: it carries the password).
    pub url: SecretString,
    /// Queues are `{queue_prefix}.resize`, `.resize.delay` and `.resize.dead`.
    #[serde(default = "default_prefix")]
    pub queue_prefix: String,
    #[serde(default = "default_exchange")]
    pub events_exchange: String,
    /// `x-expires` on the queues: they vanish after this long unused. For tests only.
    #[serde(default)]
    pub queue_expires_ms: Option<u32>,
}

impl AmqpSettings {
    pub fn work_queue(&self) -> String {
        format!("{}.resize", self.queue_prefix)
    }

    pub fn delay_queue(&self) -> String {
        format!("{}.resize.delay", self.queue_prefix)
    }

    pub fn dead_queue(&self) -> String {
        format!("{}.resize.dead", self.queue_prefix)
    }

    /// Arguments every queue is declared with (a redeclaration must repeat them exactly).
    fn queue_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        if let Some(ms) = self.queue_expires_ms {
            args.insert("x-expires".into(), AMQPValue::LongLongInt(i64::from(ms)));
        }
        args
    }

    /// The delay queue's arguments: expired messages go back to the work queue.
    fn delay_args(&self) -> FieldTable {
        let mut args = self.queue_args();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(self.work_queue().into()),
        );
        args
    }
}

/// Declares the exchange and the three queues (idempotent: run on every connection).
pub(super) async fn declare(channel: &Channel, s: &AmqpSettings) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            s.events_exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    for (name, args) in [
        (s.work_queue(), s.queue_args()),
        (s.delay_queue(), s.delay_args()),
        (s.dead_queue(), s.queue_args()),
    ] {
        channel
            .queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
            .await?;
    }
    Ok(())
}
