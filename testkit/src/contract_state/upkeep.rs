//! What the reconciler relies on: one lease holder at a time, every created batch indexed by
//! expiry until forgotten and listed as unsettled until settled, and a watch that tells since
//! when a batch has shown no progress.

use std::time::Duration;

use chrono::Utc;
use tirage_ports::ConsumedMark;
use uuid::Uuid;

use super::harness::{HOUR, StateHarness, create, new_batch};

pub async fn lease_has_one_holder_at_a_time<H: StateHarness>(h: &H) {
    let store = h.store();
    let ttl = Duration::from_millis(1500);
    let name = format!("reconciler-{}", Uuid::new_v4());
    assert!(store.take_lease(&name, "a", ttl).await.unwrap());
    assert!(!store.take_lease(&name, "b", ttl).await.unwrap());
    assert!(
        store.take_lease(&name, "a", ttl).await.unwrap(),
        "the holder renews its lease"
    );
    h.pass(Duration::from_millis(1000)).await;
    assert!(
        !store.take_lease(&name, "b", ttl).await.unwrap(),
        "the renewal pushed the expiry"
    );
    h.pass(Duration::from_millis(800)).await;
    assert!(
        store.take_lease(&name, "b", ttl).await.unwrap(),
        "an expired lease goes to the next taker"
    );
    assert!(!store.take_lease(&name, "a", ttl).await.unwrap());
    h.assert_everything_expires().await;
}

pub async fn batches_are_indexed_by_expiry_until_forgotten<H: StateHarness>(h: &H) {
    let store = h.store();
    let later = new_batch(HOUR * 2);
    let sooner = new_batch(HOUR);
    create(&*store, &later).await;
    create(&*store, &sooner).await;
    let listed = store.indexed_batches(0, 100).await.unwrap();
    let ids: Vec<Uuid> = listed.iter().map(|b| b.id).collect();
    assert_eq!(ids, vec![sooner.id, later.id], "soonest expiry first");
    assert_eq!(listed[0].expires_at, sooner.expires_at);
    let page = store.indexed_batches(1, 1).await.unwrap();
    assert_eq!(
        page.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![later.id]
    );

    store.delete_batch(sooner.id).await.unwrap();
    assert_eq!(
        store.indexed_batches(0, 100).await.unwrap().len(),
        2,
        "a deleted batch stays indexed until it expires and its objects are swept"
    );
    store.forget_batch(sooner.id).await.unwrap();
    store.forget_batch(sooner.id).await.unwrap();
    let ids: Vec<Uuid> = store
        .indexed_batches(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, vec![later.id]);
    h.assert_everything_expires().await;
}

/// Every created batch is unsettled until the reconciler settles it; a settled batch stays
/// indexed for its sweep, a forgotten one leaves both.
pub async fn settled_batches_leave_the_unsettled_list<H: StateHarness>(h: &H) {
    let store = h.store();
    let later = new_batch(HOUR * 2);
    let sooner = new_batch(HOUR);
    create(&*store, &later).await;
    create(&*store, &sooner).await;
    let ids = |list: Vec<tirage_ports::IndexedBatch>| list.iter().map(|b| b.id).collect::<Vec<_>>();
    let unsettled = store.unsettled_batches(0, 100).await.unwrap();
    assert_eq!(
        ids(unsettled.clone()),
        vec![sooner.id, later.id],
        "soonest expiry first"
    );
    assert_eq!(unsettled[0].expires_at, sooner.expires_at);
    assert_eq!(
        ids(store.unsettled_batches(1, 1).await.unwrap()),
        vec![later.id]
    );

    store.settle_batch(sooner.id).await.unwrap();
    store.settle_batch(sooner.id).await.unwrap();
    assert_eq!(
        ids(store.unsettled_batches(0, 100).await.unwrap()),
        vec![later.id]
    );
    assert_eq!(
        ids(store.indexed_batches(0, 100).await.unwrap()),
        vec![sooner.id, later.id],
        "a settled batch stays indexed until its sweep"
    );
    store.forget_batch(later.id).await.unwrap();
    assert!(store.unsettled_batches(0, 100).await.unwrap().is_empty());
    assert_eq!(
        ids(store.indexed_batches(0, 100).await.unwrap()),
        vec![sooner.id]
    );
    h.assert_everything_expires().await;
}

/// A batch outlives its expiry in the index, so a reconciler that was not running when it
/// expired (workers scaled to zero, a pass that stopped early) still finds its objects to
/// sweep; the newest batch included, whose expiry the index's own lifetime follows.
pub async fn an_expired_batch_stays_indexed_until_forgotten<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(Duration::from_millis(800));
    create(&*store, &batch).await;
    h.pass(Duration::from_millis(1500)).await;
    assert_eq!(store.get_batch(batch.id).await.unwrap(), None, "expired");
    let listed = store.indexed_batches(0, 100).await.unwrap();
    assert_eq!(
        listed.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![batch.id],
        "still indexed, for its objects to be swept"
    );
    assert_eq!(listed[0].expires_at, batch.expires_at);
    h.assert_everything_expires().await;
    store.forget_batch(batch.id).await.unwrap();
    assert!(store.indexed_batches(0, 100).await.unwrap().is_empty());
}

/// A deleted batch's sweep comes forward (its upload tickets may still write under it until
/// they lapse); never later, and never for a batch the index forgot.
pub async fn a_deleted_batch_is_swept_once_its_tickets_lapse<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    store.delete_batch(batch.id).await.unwrap();
    let soon = super::harness::ms(Utc::now()) + chrono::Duration::minutes(30);
    store.sweep_batch_at(batch.id, soon).await.unwrap();
    let listed = store.indexed_batches(0, 100).await.unwrap();
    let entry = listed
        .iter()
        .find(|b| b.id == batch.id)
        .expect("still indexed");
    assert_eq!(entry.expires_at, soon, "brought forward");
    let later = soon + chrono::Duration::minutes(10);
    store.sweep_batch_at(batch.id, later).await.unwrap();
    let listed = store.indexed_batches(0, 100).await.unwrap();
    let entry = listed
        .iter()
        .find(|b| b.id == batch.id)
        .expect("still indexed");
    assert_eq!(entry.expires_at, soon, "never pushed back");
    h.assert_everything_expires().await;
    store.forget_batch(batch.id).await.unwrap();
    store.sweep_batch_at(batch.id, soon).await.unwrap();
    let listed = store.indexed_batches(0, 100).await.unwrap();
    assert!(
        listed.iter().all(|b| b.id != batch.id),
        "a forgotten batch stays out"
    );
}

pub async fn watch_tells_since_when_a_batch_is_unchanged<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let t0 = super::harness::ms(Utc::now());
    let t1 = t0 + chrono::Duration::seconds(30);
    let t2 = t1 + chrono::Duration::seconds(30);
    assert_eq!(
        store
            .unchanged_since(batch.id, "3/10", t0, false)
            .await
            .unwrap(),
        Some(t0)
    );
    assert_eq!(
        store
            .unchanged_since(batch.id, "3/10", t1, false)
            .await
            .unwrap(),
        Some(t0),
        "the same marker keeps its first sighting"
    );
    assert_eq!(
        store
            .unchanged_since(batch.id, "4/10", t1, false)
            .await
            .unwrap(),
        Some(t1),
        "progress restarts the watch"
    );
    assert_eq!(
        store
            .unchanged_since(batch.id, "4/10", t2, true)
            .await
            .unwrap(),
        Some(t2),
        "a restart restarts it"
    );
    assert_eq!(
        store
            .unchanged_since(Uuid::new_v4(), "0/0", t0, false)
            .await
            .unwrap(),
        None
    );
    // The watch lives and expires with the batch.
    h.assert_batch_expiry(&batch).await;
    store.delete_batch(batch.id).await.unwrap();
    assert_eq!(
        store
            .unchanged_since(batch.id, "4/10", t2, false)
            .await
            .unwrap(),
        None,
        "the watch never brings a deleted batch back"
    );
    assert_eq!(store.get_batch(batch.id).await.unwrap(), None);
    h.assert_everything_expires().await;
}

pub async fn the_consumed_mark_only_rises<H: StateHarness>(h: &H) {
    let store = h.store();
    assert_eq!(
        store.consumed_mark().await.unwrap(),
        None,
        "nothing taken yet"
    );
    let base = Utc::now().timestamp_millis() - 60_000;
    let at =
        |secs: i64| chrono::DateTime::<Utc>::from_timestamp_millis(base + secs * 1000).unwrap();
    let mark = |through: i64, taken: i64| ConsumedMark {
        through: at(through),
        at: at(taken),
    };
    store.advance_consumed_mark(at(20), at(21)).await.unwrap();
    assert_eq!(store.consumed_mark().await.unwrap(), Some(mark(20, 21)));
    // A job published earlier, taken later (a retry, another worker's slower queue): the
    // mark stays where consumption has reached, and says when a job was last taken.
    store.advance_consumed_mark(at(10), at(25)).await.unwrap();
    assert_eq!(store.consumed_mark().await.unwrap(), Some(mark(20, 25)));
    // A report that arrives late (another worker's clock, a slow round trip): neither
    // field goes back.
    store.advance_consumed_mark(at(30), at(24)).await.unwrap();
    assert_eq!(store.consumed_mark().await.unwrap(), Some(mark(30, 25)));
}
