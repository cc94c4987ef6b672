//! The [`JobQueue`] contract, written once and run against every adapter.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tirage_ports::TraceContext;

use async_trait::async_trait;
use chrono::Utc;
use uuid::Uuid;

use tirage_core::model::{BatchOptions, ResizeJob};
use tirage_ports::DeadLetter;
use tirage_ports::job_queue::{Delivery, JobQueue, JobStream, Lane, WorkItem};

mod dead_letters;
pub use dead_letters::dead_letters_are_read_in_place_and_replayed_by_choice;

/// What a contract run needs besides the queue: the adapter-specific inspection hooks.
#[async_trait]
pub trait QueueHarness: Send + Sync + 'static {
    fn queue(&self) -> Arc<dyn JobQueue>;
    /// Publishes bytes that may not parse, as a broken publisher would.
    async fn publish_raw(&self, body: &[u8]);
    async fn take_dead_letter(&self) -> Option<DeadLetter>;
    /// Starts listening for events published with `routing_key`.
    async fn subscribe_events(&self, routing_key: &str) -> Box<dyn EventProbe>;
}

#[async_trait]
pub trait EventProbe: Send {
    /// The next (routing key, payload); `None` when the subscription ended.
    async fn next(&mut self) -> Option<(String, Vec<u8>)>;
}

/// How long a case waits for something that must arrive.
const ARRIVES: Duration = Duration::from_secs(10);
/// How long a case watches for something that must not arrive.
const QUIET: Duration = Duration::from_millis(500);

pub fn job() -> WorkItem {
    let (batch_id, photo_id) = (Uuid::new_v4(), Uuid::new_v4());
    WorkItem::Resize(ResizeJob {
        batch_id,
        photo_id,
        options: BatchOptions::default(),
        request_id: Some(format!("req-{}", Uuid::new_v4())),
        published_at: Utc::now(),
    })
}

/// The next delivery, failing the test if none comes within `ARRIVES`.
pub async fn next(stream: &mut Box<dyn JobStream>) -> Delivery {
    tokio::time::timeout(ARRIVES, stream.next())
        .await
        .expect("no delivery arrived in time")
        .expect("the stream ended")
        .expect("the delivery failed")
}

/// Asserts nothing is delivered for a while.
pub async fn nothing(stream: &mut Box<dyn JobStream>) {
    if let Ok(Some(got)) = tokio::time::timeout(QUIET, stream.next()).await {
        panic!("unexpected delivery: {:?}", got.map(|d| d.item));
    }
}

pub async fn publish_consume_ack<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    queue.ping().await.unwrap();
    let items: Vec<WorkItem> = (0..3).map(|_| job()).collect();
    for item in &items {
        queue.publish(item, &TraceContext::none()).await.unwrap();
    }
    // A redrive travels with its flag: the handler decides on it.
    let finalize = WorkItem::FinalizeBatch {
        batch_id: Uuid::new_v4(),
        redrive: true,
    };
    queue
        .publish(&finalize, &TraceContext::none())
        .await
        .unwrap();
    let mut stream = queue.consume(Lane::Resize, 10).await.unwrap();
    for item in &items {
        let d = next(&mut stream).await;
        assert_eq!(&d.item, item, "messages arrive in publish order");
        assert_eq!(d.attempt, 1);
        assert_eq!(
            d.retry_spent,
            Duration::ZERO,
            "a first attempt has spent no retry budget"
        );
        assert!(!d.redelivered);
        d.handle.ack().await.unwrap();
    }
    nothing(&mut stream).await;
    drop(stream);
    // The finalisation travels on its own lane.
    let mut effects = queue.consume(Lane::Effects, 10).await.unwrap();
    let d = next(&mut effects).await;
    assert_eq!(d.item, finalize);
    d.handle.ack().await.unwrap();
    nothing(&mut effects).await;
    // Acked messages are gone for every consumer.
    let mut again = queue.consume(Lane::Resize, 10).await.unwrap();
    nothing(&mut again).await;
}

/// A lane whose deliveries are all held (a callback receiver that never answers) leaves the
/// other lane free, and a retry comes back on the lane it left.
pub async fn lanes_do_not_hold_each_other<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    let finalize = |_| WorkItem::FinalizeBatch {
        batch_id: Uuid::new_v4(),
        redrive: false,
    };
    let finals: Vec<WorkItem> = (0..3).map(finalize).collect();
    for item in &finals {
        queue.publish(item, &TraceContext::none()).await.unwrap();
    }
    let mut effects = queue.consume(Lane::Effects, 1).await.unwrap();
    let held = next(&mut effects).await;
    assert_eq!(held.item, finals[0]);
    let resize = job();
    queue.publish(&resize, &TraceContext::none()).await.unwrap();
    let mut jobs = queue.consume(Lane::Resize, 1).await.unwrap();
    let d = next(&mut jobs).await;
    assert_eq!(
        d.item, resize,
        "the held effects lane does not hold resizes"
    );
    d.handle.ack().await.unwrap();
    held.handle
        .retry_later(Duration::from_millis(100), Duration::ZERO)
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let d = next(&mut effects).await;
        seen.push((d.item.clone(), d.attempt));
        d.handle.ack().await.unwrap();
    }
    assert!(
        seen.contains(&(finals[0].clone(), 2)),
        "the retry came back on the effects lane: {seen:?}"
    );
    nothing(&mut jobs).await;
    nothing(&mut effects).await;
}

/// What waits for a consumer: ready messages and retries waiting out their delay, per lane;
/// never the deliveries in flight.
pub async fn waiting_counts_ready_and_delayed_messages<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    assert_eq!(queue.waiting(Lane::Resize).await.unwrap(), 0);
    for _ in 0..2 {
        queue.publish(&job(), &TraceContext::none()).await.unwrap();
    }
    assert_eq!(queue.waiting(Lane::Resize).await.unwrap(), 2);
    assert_eq!(queue.waiting(Lane::Effects).await.unwrap(), 0);
    let mut stream = queue.consume(Lane::Resize, 1).await.unwrap();
    let first = next(&mut stream).await;
    let counted = |n: u64| async move {
        // A broker's count may trail a delivery by a moment.
        let deadline = Instant::now() + ARRIVES;
        loop {
            let got = h.queue().waiting(Lane::Resize).await.unwrap();
            if got == n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(counted(1).await, 1, "the delivery in flight is not waiting");
    first
        .handle
        .retry_later(Duration::from_millis(1500), Duration::ZERO)
        .await
        .unwrap();
    // The second message is in flight now (a broker pushes it into the freed prefetch
    // slot at once); the retry waits out its delay.
    let second = next(&mut stream).await;
    assert_eq!(counted(1).await, 1, "a delayed retry is waiting");
    second.handle.ack().await.unwrap();
    next(&mut stream).await.handle.ack().await.unwrap();
    assert_eq!(counted(0).await, 0);
}

pub async fn requeue_redelivers<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    let item = job();
    queue.publish(&item, &TraceContext::none()).await.unwrap();
    let mut stream = queue.consume(Lane::Resize, 1).await.unwrap();
    let first = next(&mut stream).await;
    first.handle.requeue().await.unwrap();
    let second = next(&mut stream).await;
    assert_eq!(second.item, item);
    assert!(second.redelivered);
    assert_eq!(second.attempt, 1, "a requeue is not a retry");
    second.handle.ack().await.unwrap();
    nothing(&mut stream).await;
}

pub async fn retry_later_comes_back_after_the_delay<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    let item = job();
    queue.publish(&item, &TraceContext::none()).await.unwrap();
    let mut stream = queue.consume(Lane::Resize, 4).await.unwrap();
    let first = next(&mut stream).await;
    let started = Instant::now();
    let spent = Duration::from_millis(1_234);
    first
        .handle
        .retry_later(Duration::from_millis(1200), spent)
        .await
        .unwrap();
    nothing(&mut stream).await;
    let second = next(&mut stream).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1100),
        "came back after {waited:?}"
    );
    assert_eq!(second.item, item);
    assert_eq!(second.attempt, 2);
    // The retry carries the budget its handler says it spent, to the millisecond (the
    // header's unit), whatever the delay and the wait in the queue.
    assert_eq!(second.retry_spent, spent);
    // Retries chain: the attempt keeps counting, the budget is what the last handler said.
    second
        .handle
        .retry_later(Duration::from_millis(100), Duration::from_millis(98_765))
        .await
        .unwrap();
    let third = next(&mut stream).await;
    assert_eq!(third.attempt, 3);
    assert_eq!(third.retry_spent, Duration::from_millis(98_765));
    third.handle.ack().await.unwrap();
    nothing(&mut stream).await;
}

/// A message's trace context comes back on its every delivery: the first, a requeued one
/// and a retry. A message published outside any trace carries none.
pub async fn trace_context_travels_with_every_delivery<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    let mut trace = TraceContext::none();
    trace.set(
        TraceContext::TRACEPARENT,
        &format!(
            "00-{}-{}-01",
            Uuid::new_v4().simple(),
            &Uuid::new_v4().simple().to_string()[..16]
        ),
    );
    trace.set(TraceContext::TRACESTATE, "tirage=contract");
    let traced = job();
    queue.publish(&traced, &trace).await.unwrap();
    let mut stream = queue.consume(Lane::Resize, 1).await.unwrap();
    let first = next(&mut stream).await;
    assert_eq!((&first.item, &first.trace), (&traced, &trace));
    first.handle.requeue().await.unwrap();
    let requeued = next(&mut stream).await;
    assert_eq!((&requeued.item, &requeued.trace), (&traced, &trace));
    requeued
        .handle
        .retry_later(Duration::from_millis(100), Duration::ZERO)
        .await
        .unwrap();
    let retried = next(&mut stream).await;
    assert_eq!((&retried.item, retried.attempt), (&traced, 2));
    assert_eq!(retried.trace, trace, "a retry stays in its trace");
    retried.handle.ack().await.unwrap();
    let untraced = job();
    queue
        .publish(&untraced, &TraceContext::none())
        .await
        .unwrap();
    let other = next(&mut stream).await;
    assert_eq!(other.item, untraced);
    assert!(other.trace.is_empty(), "{:?}", other.trace);
    other.handle.ack().await.unwrap();
    nothing(&mut stream).await;
}

pub async fn dead_letter_parks_the_message<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    let item = job();
    queue.publish(&item, &TraceContext::none()).await.unwrap();
    let mut stream = queue.consume(Lane::Resize, 1).await.unwrap();
    let d = next(&mut stream).await;
    d.handle
        .retry_later(Duration::from_millis(50), Duration::ZERO)
        .await
        .unwrap();
    let d = next(&mut stream).await;
    assert_eq!(d.attempt, 2);
    d.handle.dead_letter("retries_exhausted").await.unwrap();
    nothing(&mut stream).await;
    let dead = h.take_dead_letter().await.expect("a dead letter");
    assert_eq!(dead.reason, "retries_exhausted");
    assert_eq!(dead.attempt, 2);
    let parsed: WorkItem = serde_json::from_slice(&dead.body).unwrap();
    assert_eq!(parsed, item);
    assert!(h.take_dead_letter().await.is_none());
}

pub async fn prefetch_bounds_unacked_deliveries<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    for _ in 0..5 {
        queue.publish(&job(), &TraceContext::none()).await.unwrap();
    }
    let mut stream = queue.consume(Lane::Resize, 2).await.unwrap();
    let a = next(&mut stream).await;
    let b = next(&mut stream).await;
    nothing(&mut stream).await;
    a.handle.ack().await.unwrap();
    let c = next(&mut stream).await;
    nothing(&mut stream).await;
    for d in [b, c] {
        d.handle.ack().await.unwrap();
    }
    for _ in 0..2 {
        next(&mut stream).await.handle.ack().await.unwrap();
    }
    nothing(&mut stream).await;
}

pub async fn unacked_deliveries_return_when_the_consumer_is_dropped<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    let items = [job(), job()];
    for item in &items {
        queue.publish(item, &TraceContext::none()).await.unwrap();
    }
    let mut first = queue.consume(Lane::Resize, 10).await.unwrap();
    let held = [next(&mut first).await, next(&mut first).await];
    // The consumer dies without settling anything (as with a crashed worker).
    drop(first);
    let mut second = queue.consume(Lane::Resize, 10).await.unwrap();
    let mut again = vec![next(&mut second).await, next(&mut second).await];
    again.sort_by_key(|d| d.item == items[1]);
    for (d, item) in again.iter().zip(&items) {
        assert_eq!(&d.item, item);
        assert!(d.redelivered);
        assert_eq!(d.attempt, 1);
    }
    // The orphaned handles can no longer settle anything.
    for d in held {
        assert!(d.handle.ack().await.is_err());
    }
    for d in again {
        d.handle.ack().await.unwrap();
    }
    nothing(&mut second).await;
}

pub async fn malformed_messages_are_dead_lettered<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    h.publish_raw(b"{\"kind\":\"resize\",\"batch_id\":42}")
        .await;
    let item = job();
    queue.publish(&item, &TraceContext::none()).await.unwrap();
    let mut stream = queue.consume(Lane::Resize, 4).await.unwrap();
    let d = next(&mut stream).await;
    assert_eq!(
        d.item, item,
        "the malformed message never reaches the consumer"
    );
    d.handle.ack().await.unwrap();
    nothing(&mut stream).await;
    let dead = h
        .take_dead_letter()
        .await
        .expect("the malformed message is dead-lettered");
    assert_eq!(dead.body, b"{\"kind\":\"resize\",\"batch_id\":42}");
    assert!(dead.reason.starts_with("malformed"), "{}", dead.reason);
}

pub async fn events_reach_subscribers<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    let mut probe = h.subscribe_events("batch.completed").await;
    let payload = format!(
        "{{\"event\":\"batch.completed\",\"batch_id\":\"{}\"}}",
        Uuid::new_v4()
    );
    queue
        .publish_event("batch.completed", payload.as_bytes())
        .await
        .unwrap();
    queue.publish_event("batch.other", b"{}").await.unwrap();
    let found = tokio::time::timeout(ARRIVES, async {
        // The exchange may be shared with other tests: look for this payload.
        while let Some((key, body)) = probe.next().await {
            assert_eq!(key, "batch.completed", "binding must filter by routing key");
            if body == payload.as_bytes() {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "event not received");
}

#[macro_export]
macro_rules! job_queue_contract {
    ($harness:expr) => {
        $crate::job_queue_contract!(@cases $harness;
            publish_consume_ack, lanes_do_not_hold_each_other,
            waiting_counts_ready_and_delayed_messages, requeue_redelivers, retry_later_comes_back_after_the_delay,
            trace_context_travels_with_every_delivery,
            dead_letter_parks_the_message, prefetch_bounds_unacked_deliveries,
            unacked_deliveries_return_when_the_consumer_is_dropped,
            malformed_messages_are_dead_lettered, events_reach_subscribers,
            dead_letters_are_read_in_place_and_replayed_by_choice);
    };
    (@cases $harness:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $harness;
                $crate::contract_queue::$case(&harness).await;
            }
        )*
    };
}
