//! Crash loops: a photo whose runs keep ending with their worker dying fails with
//! `worker_crashed` instead of coming back forever. The runs a dead worker leaves behind are
//! exactly what `Runs::start_run` counted and no run ended; they are arranged here
//! through that same call (the fault suite in tests/ makes real workers die).

use std::sync::Arc;

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
    // The job's first delivery is attempt 1: `limit` runs of the poison photo and one of the
    // suspect started at that attempt and never ended.
    for _ in 0..limit {
        ports.state.start_run(f.batch.id, poison, 1).await.unwrap();
    }
    ports.state.start_run(f.batch.id, suspect, 1).await.unwrap();

    let worker = start(ports.clone(), settings, Some(fake_engine())).await;
    publish_all(&ports, &f).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!(
        (batch.total, batch.done, batch.failed),
        (3, 2, 1),
        "{batch:?}"
    );

    let record = |photo| {
        let ports = ports.clone();
        async move {
            ports
                .state
                .get_photo(f.batch.id, photo)
                .await
                .unwrap()
                .expect("photo recorded")
        }
    };
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
            .runs_started(f.batch.id, suspect, 1)
            .await
            .unwrap(),
        2,
        "the suspect's run was counted before it ran"
    );
    worker.shutdown().await;
}
