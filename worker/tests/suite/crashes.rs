//! Crash loops: a photo whose runs keep ending with their worker dying fails with
//! `worker_crashed` instead of coming back forever. What a dead worker leaves behind is a
//! hold taken by `Runs::start_run` that no run ended and that has lapsed; such holds are
//! arranged here through that same call, dated in the past (the fault suite in tests/ makes
//! real workers die).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tirage_ports::{RunHold, StateStore};
use uuid::Uuid;

use tirage_core::PhotoState;
use tirage_core::codes::FailureCode;

use crate::common::*;

pub async fn a_photo_that_keeps_crashing_workers_fails_worker_crashed(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let settings = h.settings();
    let limit = settings.crash_limit;
    let f = batch_with(
        &ports,
        small_options(),
        None,
        vec![b"poison".to_vec(), b"suspect".to_vec(), b"fresh".to_vec()],
    )
    .await;
    let (poison, suspect) = (f.photos[0], f.photos[1]);
    // `limit` runs of the poison photo and one of the suspect started an hour ago, one
    // after the other, and never ended.
    dead_runs(&*ports.state, f.batch.id, poison, limit).await;
    dead_runs(&*ports.state, f.batch.id, suspect, 1).await;

    let worker = start(ports.clone(), settings, Some(fake_engine())).await;
    publish_all(&ports, &f).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!(
        (batch.total, batch.done, batch.failed),
        (3, 2, 1),
        "{batch:?}"
    );

    let record = |photo| photo_record(&ports, f.batch.id, photo);
    let failed = record(poison).await;
    assert_eq!(failed.state, PhotoState::Failed);
    assert_eq!(failed.error, Some(FailureCode::WorkerCrashed));
    assert!(
        failed.outputs.is_empty(),
        "the poison photo is never resized"
    );
    // A photo that crashed a worker once (or stood beside one that did) runs again, alone.
    assert_eq!(record(suspect).await.state, PhotoState::Done);
    assert_eq!(
        ports
            .state
            .crashed_runs(f.batch.id, suspect, Utc::now())
            .await
            .unwrap(),
        1,
        "the suspect's own run ended: only the dead one counts"
    );
    worker.shutdown().await;
}

/// `count` runs of `photo` that started an hour ago, a second apart, each taking the photo
/// over from the one before, and never ended.
async fn dead_runs(state: &dyn StateStore, batch: Uuid, photo: Uuid, count: u32) {
    let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
    for i in 0..count {
        let hold = RunHold {
            token: Uuid::new_v4(),
            now: an_hour_ago + chrono::Duration::seconds(i64::from(i)),
            lasts: Duration::from_millis(500),
        };
        state.start_run(batch, photo, hold).await.unwrap();
    }
    assert_eq!(
        state.crashed_runs(batch, photo, Utc::now()).await.unwrap(),
        count
    );
}
