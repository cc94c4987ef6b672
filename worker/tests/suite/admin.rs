//! What `tirage-worker admin` reports and does, over the deployment's own ports: a batch
//! whose jobs were given up on is seen as such, its dead letters listed apart from another
//! batch's, replayed, and the batch then finishes.

use std::sync::Arc;

use tirage_core::PhotoState;
use tirage_ports::Lane;
use tirage_worker::admin;

use crate::common::*;

pub async fn replayed_dead_letters_finish_their_batch(h: Arc<dyn Harness>) {
    let ports = h.ports();
    let f = batch_with(
        &ports,
        small_options(),
        None,
        vec![b"a".to_vec(), b"b".to_vec()],
    )
    .await;
    let other = batch_with(&ports, small_options(), None, vec![b"c".to_vec()]).await;
    publish_all(&ports, &f).await;
    publish_all(&ports, &other).await;
    // Given up on, as a worker gives up on a job at the end of its retries.
    let mut stream = ports.queue.consume(Lane::Resize, 10).await.unwrap();
    for _ in 0..3 {
        let d = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a delivery in time")
            .expect("the stream runs")
            .expect("a delivery");
        d.handle.dead_letter("retries_exhausted").await.unwrap();
    }
    drop(stream);

    let listed = admin::dead_letters(&ports, Some(f.batch.id), 100)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    for letter in &listed {
        assert_eq!(
            (
                letter.item.kind.as_str(),
                letter.item.batch_id,
                letter.reason.as_str()
            ),
            ("resize", Some(f.batch.id), "retries_exhausted")
        );
        assert!(f.photos.contains(&letter.item.photo_id.unwrap()));
    }
    let report = admin::batch_report(&ports, f.batch.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.photos.len(), 2);
    assert!(
        report
            .photos
            .iter()
            .all(|p| p.record.state == PhotoState::Queued)
    );
    assert!(
        admin::batch_report(&ports, uuid::Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );

    let replayed = admin::replay_dead_letters(&ports, Some(f.batch.id), 100)
        .await
        .unwrap();
    assert_eq!(replayed.len(), 2, "{replayed:?}");
    let worker = start(ports.clone(), h.settings(), Some(fake_engine())).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!(
        (batch.total, batch.done, batch.failed),
        (2, 2, 0),
        "{batch:?}"
    );
    let report = admin::batch_report(&ports, f.batch.id)
        .await
        .unwrap()
        .unwrap();
    for photo in &report.photos {
        assert_eq!(
            (photo.record.state, photo.crashed_runs),
            (PhotoState::Done, 0)
        );
    }
    assert!(
        admin::dead_letters(&ports, Some(f.batch.id), 100)
            .await
            .unwrap()
            .is_empty()
    );
    let parked = admin::dead_letters(&ports, Some(other.batch.id), 100)
        .await
        .unwrap();
    assert_eq!(parked.len(), 1, "the other batch's letter stays parked");
    worker.shutdown().await;
    h.take_dead_letters().await;
}
