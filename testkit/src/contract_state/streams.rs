//! What event streams rely on: progress announcements and per-session stream leases.

use std::time::Duration;

use futures::StreamExt;
use uuid::Uuid;

use super::harness::{HOUR, StateHarness, create, done, new_batch, photos};
use tirage_ports::ProgressFeed;

/// Waits for the next announcement of `batch_id`, skipping others (other tests' batches
/// share the feed of an adapter without a key prefix). The bound only keeps a broken
/// adapter from hanging the suite.
async fn next_of(feed: &mut ProgressFeed, batch_id: Uuid, what: &str) {
    let wait = async {
        while let Some(id) = feed.next().await {
            if id == batch_id {
                return true;
            }
        }
        false
    };
    let got = tokio::time::timeout(Duration::from_secs(10), wait).await;
    assert_eq!(got, Ok(true), "no announcement after {what}");
}

pub async fn progress_is_announced<H: StateHarness>(h: &H) {
    let store = h.store();
    let mut feed = store.watch_progress().await.unwrap();
    // A second watcher gets the same announcements: the API has one per replica.
    let mut other = store.watch_progress().await.unwrap();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let added = photos(2);
    store.add_photos(batch.id, &added, 10).await.unwrap();
    next_of(&mut feed, batch.id, "add_photos").await;
    next_of(&mut other, batch.id, "add_photos (second watcher)").await;
    store.close_batch(batch.id).await.unwrap();
    next_of(&mut feed, batch.id, "close_batch").await;
    store
        .record_outcome(batch.id, added[0].id, &done())
        .await
        .unwrap();
    next_of(&mut feed, batch.id, "record_outcome").await;
    store.delete_batch(batch.id).await.unwrap();
    next_of(&mut feed, batch.id, "delete_batch").await;
}

pub async fn stream_leases_cap_per_session<H: StateHarness>(h: &H) {
    let store = h.store();
    let session = format!("session-{}", Uuid::new_v4());
    let other = format!("session-{}", Uuid::new_v4());
    let lease = Duration::from_millis(400);
    let [a, b, c] = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
    assert!(store.open_stream(&session, a, 2, lease).await.unwrap());
    assert!(store.open_stream(&session, b, 2, lease).await.unwrap());
    assert!(
        !store.open_stream(&session, c, 2, lease).await.unwrap(),
        "a third stream passes the cap of 2"
    );
    // Renewing a held lease is not a new stream.
    assert!(store.open_stream(&session, a, 2, lease).await.unwrap());
    // Another session has a cap of its own.
    assert!(store.open_stream(&other, c, 2, lease).await.unwrap());
    store.close_stream(&session, b).await.unwrap();
    store.close_stream(&session, b).await.unwrap();
    assert!(store.open_stream(&session, c, 2, lease).await.unwrap());
    // Leases nobody renews lapse: a dead replica's streams free their slots.
    h.pass(lease + Duration::from_millis(200)).await;
    for id in [Uuid::new_v4(), Uuid::new_v4()] {
        assert!(store.open_stream(&session, id, 2, lease).await.unwrap());
    }
    h.assert_everything_expires().await;
}
