//! The hold behind crash-loop detection: one run holds a photo at a time, a live hold makes
//! a copy wait without counting anything, a lapsed one counts as one crashed run, an ended
//! one never does; all gone with the batch.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::harness::{HOUR, StateHarness, create, new_batch, photos};
use tirage_ports::{RunHold, RunStart, StateError};

const LASTS: Duration = Duration::from_secs(10);

fn hold(token: Uuid, now: DateTime<Utc>) -> RunHold {
    RunHold {
        token,
        now,
        lasts: LASTS,
    }
}

pub async fn a_live_hold_makes_copies_wait_and_a_lapsed_one_counts_a_crash<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let ps = photos(2);
    store.add_photos(batch.id, &ps, 10).await.unwrap();
    let (a, b) = (ps[0].id, ps[1].id);
    let t0 = Utc::now();
    let (first, copy, third) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());

    assert_eq!(store.crashed_runs(batch.id, a, t0).await.unwrap(), 0);
    assert_eq!(
        store.start_run(batch.id, a, hold(first, t0)).await.unwrap(),
        RunStart::Started { crashed: 0 }
    );
    // A copy while the first run's hold is live: it waits, and nothing is counted, however
    // often it comes back.
    for later in [1, 5, 9] {
        let at = t0 + chrono::Duration::seconds(later);
        assert_eq!(
            store.start_run(batch.id, a, hold(copy, at)).await.unwrap(),
            RunStart::Held
        );
        assert_eq!(store.crashed_runs(batch.id, a, at).await.unwrap(), 0);
    }
    // Renewed, the hold outlives its first term.
    let t8 = t0 + chrono::Duration::seconds(8);
    assert!(store.renew_run(batch.id, a, hold(first, t8)).await.unwrap());
    let t15 = t0 + chrono::Duration::seconds(15);
    assert_eq!(
        store.start_run(batch.id, a, hold(copy, t15)).await.unwrap(),
        RunStart::Held
    );
    // Never renewed again, it lapses: that run's worker died.
    let t19 = t0 + chrono::Duration::seconds(19);
    assert_eq!(store.crashed_runs(batch.id, a, t15).await.unwrap(), 0);
    assert_eq!(store.crashed_runs(batch.id, a, t19).await.unwrap(), 1);
    assert_eq!(
        store.start_run(batch.id, a, hold(copy, t19)).await.unwrap(),
        RunStart::Started { crashed: 1 }
    );
    assert!(
        !store
            .renew_run(batch.id, a, hold(first, t19))
            .await
            .unwrap(),
        "the dead run's hold is taken"
    );
    store.end_run(batch.id, a, first).await.unwrap();
    assert_eq!(
        store
            .start_run(batch.id, a, hold(third, t19))
            .await
            .unwrap(),
        RunStart::Held,
        "ending someone else's run changes nothing"
    );
    assert_eq!(
        store.crashed_runs(batch.id, b, t19).await.unwrap(),
        0,
        "each photo counts its own runs"
    );

    assert!(matches!(
        store.start_run(Uuid::new_v4(), a, hold(first, t0)).await,
        Err(StateError::NotFound)
    ));
    assert_eq!(store.crashed_runs(Uuid::new_v4(), a, t0).await.unwrap(), 0);
}

pub async fn an_ended_run_never_counts_as_crashed<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let ps = photos(1);
    store.add_photos(batch.id, &ps, 10).await.unwrap();
    let a = ps[0].id;
    let t0 = Utc::now();
    let much_later = t0 + chrono::Duration::hours(1);

    // Runs that end (a transient failure after the engine, then a retry) leave nothing.
    for _ in 0..5 {
        let token = Uuid::new_v4();
        assert_eq!(
            store.start_run(batch.id, a, hold(token, t0)).await.unwrap(),
            RunStart::Started { crashed: 0 }
        );
        store.end_run(batch.id, a, token).await.unwrap();
    }
    assert_eq!(
        store.crashed_runs(batch.id, a, much_later).await.unwrap(),
        0
    );
    assert!(
        !store
            .renew_run(batch.id, a, hold(Uuid::new_v4(), t0))
            .await
            .unwrap(),
        "no run holds it"
    );

    // A run that never ended, then another after its lapse: one crash, kept for every later
    // run.
    let dead = Uuid::new_v4();
    store.start_run(batch.id, a, hold(dead, t0)).await.unwrap();
    let next = Uuid::new_v4();
    assert_eq!(
        store
            .start_run(batch.id, a, hold(next, much_later))
            .await
            .unwrap(),
        RunStart::Started { crashed: 1 }
    );
    store.end_run(batch.id, a, next).await.unwrap();
    assert_eq!(
        store.crashed_runs(batch.id, a, much_later).await.unwrap(),
        1
    );

    store.delete_batch(batch.id).await.unwrap();
    create(&*store, &batch).await;
    assert_eq!(
        store.crashed_runs(batch.id, a, much_later).await.unwrap(),
        0,
        "a batch created again under the same id starts with no runs"
    );
}
