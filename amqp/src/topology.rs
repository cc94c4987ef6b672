//! What the queue declares on the broker, all durable:
//! - `{prefix}.resize` and `{prefix}.effects` — the work queues of the two lanes (resize
//!   jobs; finalisations, whose callbacks wait on third parties); persistent messages, manual
//!   acks, `basic.qos` prefetch per consumer.
//! - `{prefix}.resize.delay` and `{prefix}.effects.delay` — retries wait here with a
//!   per-message `expiration`, then dead-letter back into their lane's work queue. RabbitMQ
//!   only expires messages at the head of a queue, so a short delay queued behind a longer
//!   one comes back late, never early.
//! - `{prefix}.resize.dead` — messages of either lane given up on (attempts exhausted, or
//!   unparsable), with the reason in the `x-tirage-dead-reason` header.
//! - the events topic exchange (default `tirage.events`).
//!
//! The queues are classic or quorum queues (`[amqp] queue_type`). Nothing here needs
//! what quorum queues lack (RabbitMQ 3.10): no priorities, no global QoS (prefetch is per
//! consumer), no exclusive, auto-delete or non-durable queue among them; per-message
//! TTL and `x-expires` work on both since 3.10. The one difference: a quorum delay queue
//! dead-letters *at least once* (the default, at most once, would drop a retry whose trip
//! back to the work queue fails while a node is down); a duplicate is harmless, jobs are
//! idempotent.

use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use super::settings::{AmqpSettings, QueueType};
use tirage_ports::job_queue::Lane;

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

/// Arguments every queue is declared with (a redeclaration must repeat them exactly).
fn queue_args(s: &AmqpSettings) -> FieldTable {
    let mut args = FieldTable::default();
    if let Some(ms) = s.queue_expires_ms {
        args.insert("x-expires".into(), AMQPValue::LongLongInt(i64::from(ms)));
    }
    // Classic queues are declared without the argument, exactly as before it existed, so
    // queues declared by an earlier version are redeclared as they are.
    if s.queue_type == QueueType::Quorum {
        args.insert("x-queue-type".into(), text(QueueType::Quorum.as_str()));
    }
    args
}

/// A delay queue's arguments: expired messages go back to its lane's work queue.
fn delay_args(s: &AmqpSettings, lane: Lane) -> FieldTable {
    let mut args = queue_args(s);
    args.insert("x-dead-letter-exchange".into(), text(""));
    args.insert(
        "x-dead-letter-routing-key".into(),
        text(&s.work_queue(lane)),
    );
    if s.queue_type == QueueType::Quorum {
        // At-least-once dead-lettering keeps an expired retry in the delay queue until the
        // work queue has confirmed it. RabbitMQ requires `reject-publish` overflow for it;
        // with no length limit set, that changes nothing else.
        args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
        args.insert("x-overflow".into(), text("reject-publish"));
    }
    args
}

/// Declares the exchange and the queues (idempotent: run on every connection).
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
    let mut queues = vec![(s.dead_queue(), queue_args(s))];
    for lane in Lane::ALL {
        queues.push((s.work_queue(lane), queue_args(s)));
        queues.push((s.delay_queue(lane), delay_args(s, lane)));
    }
    for (name, args) in queues {
        channel
            .queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
            .await?;
    }
    Ok(())
}

/// Adds what to do to a declaration that failed because the queues exist with another type
/// (`PRECONDITION_FAILED - inequivalent arg 'x-queue-type'`): the broker's message alone
/// does not say that the fix is on our side.
pub(super) fn explain(error: &lapin::Error, s: &AmqpSettings) -> String {
    let message = error.to_string();
    if message.contains("x-queue-type") {
        format!(
            "{message}: the queues {}.* exist with another type than queue_type = \"{}\"; \
             use a new queue_prefix, or drain and delete the old queues (docs/DEPLOY.md)",
            s.queue_prefix,
            s.queue_type.as_str()
        )
    } else {
        message
    }
}
