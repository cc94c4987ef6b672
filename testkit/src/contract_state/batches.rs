//! A batch's life: photos added, outcomes recorded exactly once, closing, pages.

use std::sync::Arc;

use uuid::Uuid;

use super::harness::{HOUR, StateHarness, create, done, failed, new_batch, photos};
use tirage_core::codes::{FailureCode, PhotoWarning};
use tirage_core::model::{BatchState, PhotoState};
use tirage_ports::{RecordResult, StateError};

pub async fn batch_lifecycle<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    assert_eq!(
        store.get_batch(batch.id).await.unwrap(),
        Some(batch.clone())
    );
    assert_eq!(store.get_batch(Uuid::new_v4()).await.unwrap(), None);

    let ps = photos(3);
    let after_add = store.add_photos(batch.id, &ps, 100).await.unwrap();
    assert_eq!(after_add.total, 3);
    // A retried request registers nothing twice.
    let again = store.add_photos(batch.id, &ps[..1], 100).await.unwrap();
    assert_eq!(again.total, 3);
    assert_eq!(
        store.get_photo(batch.id, ps[0].id).await.unwrap(),
        Some(ps[0].clone())
    );
    assert_eq!(
        store.get_photo(batch.id, Uuid::new_v4()).await.unwrap(),
        None
    );

    match store
        .record_outcome(batch.id, ps[0].id, &done())
        .await
        .unwrap()
    {
        RecordResult::Recorded {
            batch: b,
            completed_now,
        } => {
            assert!(!completed_now, "an open batch never completes");
            assert_eq!((b.done, b.failed, b.state), (1, 0, BatchState::Open));
        }
        other => panic!("first record: {other:?}"),
    }
    match store
        .record_outcome(batch.id, ps[0].id, &failed(FailureCode::CorruptImage))
        .await
        .unwrap()
    {
        RecordResult::AlreadyRecorded { batch: b } => assert_eq!((b.done, b.failed), (1, 0)),
        other => panic!("second record: {other:?}"),
    }
    let photo = store.get_photo(batch.id, ps[0].id).await.unwrap().unwrap();
    assert_eq!(photo.state, PhotoState::Done);
    assert_eq!((photo.width, photo.height), (Some(3840), Some(2160)));
    assert_eq!(photo.outputs.len(), 2);
    assert_eq!(
        photo.warnings,
        [PhotoWarning::Truncated],
        "warnings are kept"
    );
    assert_eq!(photo.filename, ps[0].filename);

    let closed = store.close_batch(batch.id).await.unwrap();
    assert!(!closed.completed_now);
    assert_eq!(closed.batch.state, BatchState::Processing);
    let closed = store.close_batch(batch.id).await.unwrap();
    assert!(!closed.completed_now, "close is idempotent");
    assert_eq!(closed.batch.state, BatchState::Processing);

    match store
        .record_outcome(batch.id, ps[1].id, &failed(FailureCode::CorruptImage))
        .await
        .unwrap()
    {
        RecordResult::Recorded { completed_now, .. } => assert!(!completed_now),
        other => panic!("{other:?}"),
    }
    let failed_photo = store.get_photo(batch.id, ps[1].id).await.unwrap().unwrap();
    assert_eq!(failed_photo.state, PhotoState::Failed);
    assert_eq!(failed_photo.error, Some(FailureCode::CorruptImage));
    match store
        .record_outcome(batch.id, ps[2].id, &done())
        .await
        .unwrap()
    {
        RecordResult::Recorded {
            batch: b,
            completed_now,
        } => {
            assert!(completed_now);
            assert_eq!(
                (b.total, b.done, b.failed, b.state),
                (3, 2, 1, BatchState::Completed)
            );
        }
        other => panic!("{other:?}"),
    }
    let stored = store.get_batch(batch.id).await.unwrap().unwrap();
    assert_eq!(stored.state, BatchState::Completed);
    assert_eq!(
        (&stored.owner, &stored.options, &stored.callback_url),
        (&batch.owner, &batch.options, &batch.callback_url)
    );
    assert!(!store.close_batch(batch.id).await.unwrap().completed_now);

    // A photo the batch never registered is told apart from a batch that is gone: the
    // batch is named, and nothing moves.
    match store
        .record_outcome(batch.id, Uuid::new_v4(), &done())
        .await
        .unwrap()
    {
        RecordResult::UnknownPhoto { batch: b } => {
            assert_eq!((b.id, b.total, b.done, b.failed), (batch.id, 3, 2, 1));
            assert_eq!(b.state, BatchState::Completed);
        }
        other => panic!("{other:?}"),
    }
    let unchanged = store.get_batch(batch.id).await.unwrap().unwrap();
    assert_eq!((unchanged.done, unchanged.failed), (2, 1));
    assert!(matches!(
        store
            .record_outcome(Uuid::new_v4(), ps[0].id, &done())
            .await,
        Err(StateError::NotFound)
    ));
    h.assert_batch_expiry(&stored).await;
    h.assert_everything_expires().await;
}

pub async fn add_photos_limit_and_closed<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let ps = photos(5);
    assert_eq!(
        store.add_photos(batch.id, &ps[..2], 3).await.unwrap().total,
        2
    );
    match store.add_photos(batch.id, &ps[2..4], 3).await {
        Err(StateError::TooManyPhotos { limit: 3 }) => {}
        other => panic!("expected too_many_photos, got {other:?}"),
    }
    // All or none: neither photo of the refused call exists.
    assert_eq!(store.get_photo(batch.id, ps[2].id).await.unwrap(), None);
    assert_eq!(store.get_photo(batch.id, ps[3].id).await.unwrap(), None);
    assert_eq!(store.get_batch(batch.id).await.unwrap().unwrap().total, 2);
    assert_eq!(
        store
            .add_photos(batch.id, &ps[2..3], 3)
            .await
            .unwrap()
            .total,
        3
    );

    store.close_batch(batch.id).await.unwrap();
    assert!(matches!(
        store.add_photos(batch.id, &ps[4..], 100).await,
        Err(StateError::BatchClosed)
    ));
    assert!(matches!(
        store.add_photos(Uuid::new_v4(), &ps[4..], 100).await,
        Err(StateError::NotFound)
    ));
    assert!(matches!(
        store.close_batch(Uuid::new_v4()).await,
        Err(StateError::NotFound)
    ));
}

pub async fn closing_a_finished_batch_completes_it<H: StateHarness>(h: &H) {
    let store = h.store();
    let empty = new_batch(HOUR);
    create(&*store, &empty).await;
    let closed = store.close_batch(empty.id).await.unwrap();
    assert!(closed.completed_now);
    assert_eq!(closed.batch.state, BatchState::Completed);
    assert!(!store.close_batch(empty.id).await.unwrap().completed_now);

    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let ps = photos(2);
    store.add_photos(batch.id, &ps, 10).await.unwrap();
    for p in &ps {
        match store.record_outcome(batch.id, p.id, &done()).await.unwrap() {
            RecordResult::Recorded { completed_now, .. } => assert!(!completed_now),
            other => panic!("{other:?}"),
        }
    }
    let closed = store.close_batch(batch.id).await.unwrap();
    assert!(closed.completed_now);
    assert_eq!(
        (closed.batch.done, closed.batch.state),
        (2, BatchState::Completed)
    );
}

/// Duplicate deliveries racing on every photo while the batch is being closed: counters move
/// once per photo and exactly one caller sees the completion.
pub async fn exactly_once_under_concurrent_duplicates<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let ps = photos(10);
    store.add_photos(batch.id, &ps, 100).await.unwrap();

    let barrier = Arc::new(tokio::sync::Barrier::new(50 + 9 * 3 + 1));
    let mut tasks = Vec::new();
    // 50 racers on the first photo, 3 on each other one, half reporting failure.
    for (i, p) in ps.iter().enumerate() {
        let racers = if i == 0 { 50 } else { 3 };
        for r in 0..racers {
            let (store, barrier, pid) = (store.clone(), barrier.clone(), p.id);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let outcome = if r % 2 == 0 {
                    done()
                } else {
                    failed(FailureCode::CorruptImage)
                };
                match store.record_outcome(batch.id, pid, &outcome).await.unwrap() {
                    RecordResult::Recorded { completed_now, .. } => {
                        (1u32, u32::from(completed_now))
                    }
                    RecordResult::AlreadyRecorded { .. } => (0, 0),
                    other => panic!("{other:?}"),
                }
            }));
        }
    }
    let closer = {
        let (store, barrier) = (store.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            u32::from(store.close_batch(batch.id).await.unwrap().completed_now)
        })
    };
    let (mut recorded, mut completions) = (0, 0);
    for t in tasks {
        let (r, c) = t.await.unwrap();
        recorded += r;
        completions += c;
    }
    completions += closer.await.unwrap();
    assert_eq!(recorded, 10, "each photo is recorded exactly once");
    assert_eq!(completions, 1, "exactly one caller completes the batch");
    let b = store.get_batch(batch.id).await.unwrap().unwrap();
    assert_eq!(b.done + b.failed, 10);
    assert_eq!(b.total, 10);
    assert_eq!(b.state, BatchState::Completed);
}

pub async fn pagination<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let ps = photos(25);
    for chunk in ps.chunks(7) {
        store.add_photos(batch.id, chunk, 100).await.unwrap();
    }
    store
        .record_outcome(batch.id, ps[12].id, &done())
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_photos(batch.id, cursor.as_deref(), 10)
            .await
            .unwrap();
        pages += 1;
        assert!(page.photos.len() <= 10);
        seen.extend(page.photos);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    let ids: Vec<Uuid> = seen.iter().map(|p| p.id).collect();
    let expected: Vec<Uuid> = ps.iter().map(|p| p.id).collect();
    assert_eq!(ids, expected, "photos come in insertion order, each once");
    assert_eq!(seen[12].state, PhotoState::Done);
    assert_eq!(seen[11].state, PhotoState::Queued);

    let all = store.list_photos(batch.id, None, 100).await.unwrap();
    assert_eq!(all.photos.len(), 25);
    assert_eq!(all.next_cursor, None);
    assert!(matches!(
        store.list_photos(batch.id, Some("not-a-cursor"), 10).await,
        Err(StateError::NotFound)
    ));
    assert!(matches!(
        store.list_photos(Uuid::new_v4(), None, 10).await,
        Err(StateError::NotFound)
    ));
}
