//! The run counter behind crash-loop detection: runs counted per delivery attempt, starting
//! again at a new attempt, gone with the batch.

use uuid::Uuid;

use super::harness::{HOUR, StateHarness, create, new_batch, photos};
use tirage_ports::StateError;

pub async fn runs_count_per_attempt<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let ps = photos(2);
    store.add_photos(batch.id, &ps, 10).await.unwrap();
    let (a, b) = (ps[0].id, ps[1].id);

    assert_eq!(store.runs_started(batch.id, a, 1).await.unwrap(), 0);
    assert_eq!(store.start_run(batch.id, a, 1).await.unwrap(), 0);
    assert_eq!(store.start_run(batch.id, a, 1).await.unwrap(), 1);
    assert_eq!(store.start_run(batch.id, a, 1).await.unwrap(), 2);
    assert_eq!(store.runs_started(batch.id, a, 1).await.unwrap(), 3);
    assert_eq!(
        store.runs_started(batch.id, b, 1).await.unwrap(),
        0,
        "each photo counts its own runs"
    );

    // The job moved to its next attempt (a retry): the earlier runs all ended.
    assert_eq!(store.runs_started(batch.id, a, 2).await.unwrap(), 0);
    assert_eq!(store.start_run(batch.id, a, 2).await.unwrap(), 0);
    assert_eq!(store.runs_started(batch.id, a, 2).await.unwrap(), 1);
    assert_eq!(store.runs_started(batch.id, a, 1).await.unwrap(), 0);

    assert!(matches!(
        store.start_run(Uuid::new_v4(), a, 1).await,
        Err(StateError::NotFound)
    ));
    assert_eq!(store.runs_started(Uuid::new_v4(), a, 1).await.unwrap(), 0);

    store.delete_batch(batch.id).await.unwrap();
    create(&*store, &batch).await;
    assert_eq!(
        store.runs_started(batch.id, a, 2).await.unwrap(),
        0,
        "a batch created again under the same id starts with no runs"
    );
}
