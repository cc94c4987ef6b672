//! What one reconciler pass costs over many batches (docs/BENCHMARKS.md, "## Reconciler"), on
//! the real Redis, RabbitMQ and Garage: `settled` batches completed with their effects done
//! and `in_flight` batches with a photo queued, under a fresh key prefix. The first pass
//! reads every one (what every pass cost before the unsettled list, and what the first pass
//! after upgrading costs) and settles the completed ones; the second reads only what is in
//! flight. Prints each pass's time and the Redis commands it sent (`INFO stats`).
//!
//!   cargo run --release -p tirage-worker --example reconcile_pass -- [settled] [in_flight]
//!   (100000 and 100 by default)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::StreamExt;
use secrecy::SecretString;
use tirage_core::codes::Effect;
use tirage_core::{Batch, BatchOptions, BatchState, PhotoRecord};
use tirage_ports::{Cap, StateStore, Upkeep};
use tirage_runtime::{PortNames, config};
use tirage_testkit as testing;
use tirage_worker::{Metrics, Node, Ports, Seams, WorkerSettings};
use uuid::Uuid;

/// Calls to Redis in flight at once while the batches are made.
const AT_ONCE: usize = 256;

fn batch() -> Batch {
    let now = Utc::now();
    Batch {
        id: Uuid::new_v4(),
        owner: "reconcile-bench".into(),
        state: BatchState::Open,
        options: BatchOptions::default(),
        callback_url: None,
        total: 0,
        done: 0,
        failed: 0,
        created_at: now,
        expires_at: now + chrono::Duration::hours(1),
    }
}

/// A batch completed with both its effects done: nothing left to repair.
async fn settled(state: &dyn StateStore) {
    let b = batch();
    state.create_batch(&b, Cap::Unlimited).await.unwrap();
    state.close_batch(b.id).await.unwrap();
    for effect in [Effect::Event, Effect::Callback] {
        state.mark_effect_done(b.id, effect).await.unwrap();
    }
}

/// A closed batch with one photo still queued.
async fn in_flight(state: &dyn StateStore) {
    let b = batch();
    state.create_batch(&b, Cap::Unlimited).await.unwrap();
    let photo = PhotoRecord::queued(Uuid::new_v4(), "bench.jpg");
    state.add_photos(b.id, &[photo], 10).await.unwrap();
    state.close_batch(b.id).await.unwrap();
}

async fn commands_processed(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO stats has total_commands_processed")
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n_settled: usize = args.next().map_or(100_000, |a| a.parse().unwrap());
    let n_in_flight: usize = args.next().map_or(100, |a| a.parse().unwrap());
    let redis_settings = testing::redis_settings();
    let state = Arc::new(testing::redis_state_on(&redis_settings).await);
    let ports = Ports {
        state: state.clone(),
        objects: Arc::new(testing::s3_store().await),
        queue: Arc::new(testing::amqp_queue().await),
        names: PortNames::production(),
    };

    let made = Instant::now();
    futures::stream::iter(0..n_settled + n_in_flight)
        .for_each_concurrent(AT_ONCE, |i| {
            let state = state.clone();
            async move {
                if i < n_settled {
                    settled(&*state).await;
                } else {
                    in_flight(&*state).await;
                }
            }
        })
        .await;
    println!(
        "made {n_settled} settled and {n_in_flight} in-flight batches in {:.1} s",
        made.elapsed().as_secs_f64()
    );

    let settings = WorkerSettings {
        host: "127.0.0.1".into(),
        port: 0,
        callback_secret: SecretString::from("bench-callback-secret-not-published"),
        // Each `reconcile_once` takes the lease under a holder of its own, for three of
        // these: short, so that the second pass finds it free.
        reconcile_every_ms: 100,
        ..WorkerSettings::from_layers(&config::Layers::defaults_only()).unwrap()
    };
    let node = Node::new(
        settings,
        ports,
        Seams::production(),
        Metrics::new().unwrap(),
    )
    .unwrap();
    let client = redis::Client::open(redis_settings.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for pass in 1..=2 {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let before = commands_processed(&mut conn).await;
        let started = Instant::now();
        assert!(node.reconcile_once().await.unwrap(), "the lease is free");
        let took = started.elapsed();
        let commands = commands_processed(&mut conn).await - before - 1;
        let unsettled = state.unsettled_batches(0, 1_000_000).await.unwrap().len();
        println!(
            "pass {pass}: {:.2} s, {commands} Redis commands; {unsettled} batches left unsettled",
            took.as_secs_f64()
        );
    }

    // Leave nothing behind under the prefix.
    let pattern = format!("{}*", redis_settings.key_prefix);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    for chunk in keys.chunks(1000) {
        let _: i64 = redis::cmd("UNLINK")
            .arg(chunk)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}
