//! Jobs that name something the state store does not know: they are dropped, and they never
//! touch what a real batch stored.

use std::sync::Arc;
use tirage_ports::TraceContext;

use tirage_core::{BatchState, keys};
use uuid::Uuid;

use crate::common::*;

/// A well-formed job naming a finished batch and a photo it never registered (a lost
/// registration, a replayed or duplicated message): dropped, and every rendition of the
/// batch stays downloadable, its counts unchanged.
pub async fn a_stray_job_never_touches_a_finished_batch(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let f = batch_with(
        &ports,
        small_options(),
        None,
        vec![b"a".to_vec(), b"b".to_vec()],
    )
    .await;
    let worker = start(ports.clone(), h.settings(), Some(fake_engine())).await;
    publish_all(&ports, &f).await;
    let before = wait_completed(&ports, f.batch.id, WAIT).await;
    let mut renditions = Vec::new();
    for photo in &f.photos {
        let record = ports.state.get_photo(f.batch.id, *photo).await.unwrap();
        for out in record.expect("photo recorded").outputs {
            renditions.push(keys::rendition_key(
                f.batch.id,
                *photo,
                out.size,
                f.batch.options.format,
            ));
        }
    }
    assert_eq!(renditions.len(), 4, "{renditions:?}");

    ports
        .queue
        .publish(&job(&f, Uuid::new_v4()), &TraceContext::none())
        .await
        .unwrap();
    let m = worker.metrics.clone();
    wait_for("stray job dropped", WAIT, || {
        m.job_count(JobKind::Resize, JobOutcome::UnknownPhoto) == 1
    })
    .await;

    for key in &renditions {
        assert!(ports.objects.get(key).await.is_ok(), "{key} was deleted");
    }
    let after = ports.state.get_batch(f.batch.id).await.unwrap().unwrap();
    assert_eq!(after.state, BatchState::Completed);
    assert_eq!(
        (after.total, after.done, after.failed),
        (before.total, before.done, before.failed)
    );
    worker.shutdown().await;
}
