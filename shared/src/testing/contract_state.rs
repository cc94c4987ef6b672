//! The [`StateStore`] contract, written once and run against every adapter.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{
    Batch, BatchOptions, BatchState, PhotoOutcome, PhotoRecord, PhotoState, Rendition,
};
use crate::ports::state_store::{
    Authorize, PendingUpload, RateDecision, RateLimit, RecordResult, Session, StateError,
    StateStore,
};

/// What a contract run needs besides the store itself.
#[async_trait]
pub trait StateHarness: Send + Sync + 'static {
    fn store(&self) -> Arc<dyn StateStore>;
    /// Lets `d` pass as the store sees time: moves a manual clock, or sleeps for a server.
    async fn pass(&self, d: Duration);
    /// Asserts that everything stored for `batch` is set to expire at `batch.expires_at`
    /// (Redis: the `PTTL` of every key; memory: covered by [`StateHarness::pass`]).
    async fn assert_batch_expiry(&self, batch: &Batch);
    /// Asserts that nothing this harness stored lives forever.
    async fn assert_everything_expires(&self);
}

/// Milliseconds precision, as every adapter stores it.
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

pub fn new_batch(expires_in: Duration) -> Batch {
    let now = ms(Utc::now());
    Batch {
        id: Uuid::new_v4(),
        owner: format!("session-{}", Uuid::new_v4()),
        state: BatchState::Open,
        options: BatchOptions::default(),
        callback_url: Some("https://example.com/hook".into()),
        total: 0,
        done: 0,
        failed: 0,
        created_at: now,
        expires_at: now + chrono::Duration::from_std(expires_in).unwrap_or_default(),
    }
}

pub fn photos(n: usize) -> Vec<PhotoRecord> {
    (0..n)
        .map(|i| PhotoRecord::queued(Uuid::new_v4(), format!("IMG_{i:04}.jpg")))
        .collect()
}

pub fn done() -> PhotoOutcome {
    PhotoOutcome::Done {
        width: 3840,
        height: 2160,
        renditions: vec![
            Rendition {
                size: 1080,
                width: 1920,
                height: 1080,
                bytes: 512_000,
            },
            Rendition {
                size: 360,
                width: 640,
                height: 360,
                bytes: 40_000,
            },
        ],
    }
}

pub fn failed(code: &str) -> PhotoOutcome {
    PhotoOutcome::Failed { code: code.into() }
}

const HOUR: Duration = Duration::from_secs(3600);

pub async fn sessions_slide<H: StateHarness>(h: &H) {
    // Generous margins: against a real server the sleeps run on a loaded 2-core machine.
    let store = h.store();
    let now = ms(Utc::now());
    let ttl = Duration::from_millis(1500);
    let session = Session {
        id: format!("digest-{}", Uuid::new_v4()),
        created_at: now,
        expires_at: now + chrono::Duration::milliseconds(1500),
    };
    store.put_session(&session, ttl).await.unwrap();
    h.assert_everything_expires().await;
    assert_eq!(
        store.touch_session("digest-unknown", ttl).await.unwrap(),
        None
    );

    h.pass(Duration::from_millis(1000)).await;
    let touched = store
        .touch_session(&session.id, ttl)
        .await
        .unwrap()
        .expect("live session");
    assert_eq!(touched.id, session.id);
    assert_eq!(touched.created_at, session.created_at);
    assert!(
        touched.expires_at > session.expires_at,
        "the expiry must slide forward"
    );

    // 2 s after creation: alive only because the touch pushed the expiry.
    h.pass(Duration::from_millis(1000)).await;
    assert!(
        store
            .touch_session(&session.id, ttl)
            .await
            .unwrap()
            .is_some()
    );
    h.assert_everything_expires().await;

    h.pass(Duration::from_millis(1700)).await;
    assert_eq!(store.touch_session(&session.id, ttl).await.unwrap(), None);
}

pub async fn batch_lifecycle<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    store.create_batch(&batch).await.unwrap();
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
        .record_outcome(batch.id, ps[0].id, &failed("corrupt_image"))
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
    assert_eq!(photo.filename, ps[0].filename);

    let closed = store.close_batch(batch.id).await.unwrap();
    assert!(!closed.completed_now);
    assert_eq!(closed.batch.state, BatchState::Processing);
    let closed = store.close_batch(batch.id).await.unwrap();
    assert!(!closed.completed_now, "close is idempotent");
    assert_eq!(closed.batch.state, BatchState::Processing);

    match store
        .record_outcome(batch.id, ps[1].id, &failed("corrupt_image"))
        .await
        .unwrap()
    {
        RecordResult::Recorded { completed_now, .. } => assert!(!completed_now),
        other => panic!("{other:?}"),
    }
    let failed_photo = store.get_photo(batch.id, ps[1].id).await.unwrap().unwrap();
    assert_eq!(failed_photo.state, PhotoState::Failed);
    assert_eq!(failed_photo.error.as_deref(), Some("corrupt_image"));
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

    assert!(matches!(
        store
            .record_outcome(batch.id, Uuid::new_v4(), &done())
            .await,
        Err(StateError::NotFound)
    ));
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
    store.create_batch(&batch).await.unwrap();
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
    store.create_batch(&empty).await.unwrap();
    let closed = store.close_batch(empty.id).await.unwrap();
    assert!(closed.completed_now);
    assert_eq!(closed.batch.state, BatchState::Completed);
    assert!(!store.close_batch(empty.id).await.unwrap().completed_now);

    let batch = new_batch(HOUR);
    store.create_batch(&batch).await.unwrap();
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
    store.create_batch(&batch).await.unwrap();
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
                    failed("corrupt_image")
                };
                match store.record_outcome(batch.id, pid, &outcome).await.unwrap() {
                    RecordResult::Recorded { completed_now, .. } => {
                        (1u32, u32::from(completed_now))
                    }
                    RecordResult::AlreadyRecorded { .. } => (0, 0),
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
    store.create_batch(&batch).await.unwrap();
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

/// Everything about a batch disappears at its `expires_at`.
pub async fn batch_expires<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(Duration::from_secs(3));
    store.create_batch(&batch).await.unwrap();
    let ps = photos(2);
    store.add_photos(batch.id, &ps, 10).await.unwrap();
    store
        .record_outcome(batch.id, ps[0].id, &done())
        .await
        .unwrap();
    store.close_batch(batch.id).await.unwrap();
    let upload = PendingUpload {
        photo_id: Uuid::new_v4(),
        filename: "late.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 10,
        expires_at: batch.expires_at + chrono::Duration::hours(1),
    };
    store.put_pending_upload(batch.id, &upload).await.unwrap();
    assert!(store.mark_effect_done(batch.id, "event").await.unwrap());
    h.assert_batch_expiry(&batch).await;
    h.assert_everything_expires().await;

    h.pass(Duration::from_millis(3300)).await;
    assert_eq!(store.get_batch(batch.id).await.unwrap(), None);
    assert_eq!(store.get_photo(batch.id, ps[0].id).await.unwrap(), None);
    assert!(matches!(
        store.list_photos(batch.id, None, 10).await,
        Err(StateError::NotFound)
    ));
    assert!(!store.is_effect_done(batch.id, "event").await.unwrap());
    assert_eq!(
        store
            .take_pending_upload(batch.id, upload.photo_id)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store.record_outcome(batch.id, ps[1].id, &done()).await,
        Err(StateError::NotFound)
    ));
}

pub async fn pending_uploads<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    store.create_batch(&batch).await.unwrap();
    let upload = PendingUpload {
        photo_id: Uuid::new_v4(),
        filename: "a.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 1234,
        expires_at: ms(Utc::now()) + chrono::Duration::seconds(2),
    };
    store.put_pending_upload(batch.id, &upload).await.unwrap();
    let short = PendingUpload {
        photo_id: Uuid::new_v4(),
        ..upload.clone()
    };
    store.put_pending_upload(batch.id, &short).await.unwrap();
    h.assert_everything_expires().await;
    assert_eq!(
        store
            .take_pending_upload(batch.id, upload.photo_id)
            .await
            .unwrap(),
        Some(upload.clone())
    );
    assert_eq!(
        store
            .take_pending_upload(batch.id, upload.photo_id)
            .await
            .unwrap(),
        None
    );
    h.pass(Duration::from_millis(2200)).await;
    assert_eq!(
        store
            .take_pending_upload(batch.id, short.photo_id)
            .await
            .unwrap(),
        None,
        "an expired upload cannot be completed"
    );
}

pub async fn effects_once<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    store.create_batch(&batch).await.unwrap();
    assert!(!store.is_effect_done(batch.id, "event").await.unwrap());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.mark_effect_done(batch.id, "event").await.unwrap()
        }));
    }
    let mut firsts = 0;
    for t in tasks {
        firsts += u32::from(t.await.unwrap());
    }
    assert_eq!(firsts, 1);
    assert!(store.is_effect_done(batch.id, "event").await.unwrap());
    assert!(!store.is_effect_done(batch.id, "callback").await.unwrap());
    assert!(store.mark_effect_done(batch.id, "callback").await.unwrap());
    h.assert_batch_expiry(&batch).await;
}

pub async fn rate_limit_window<H: StateHarness>(h: &H) {
    let store = h.store();
    let key = format!("session-{}", Uuid::new_v4());
    let window = Duration::from_secs(1);
    for remaining in [2, 1, 0] {
        assert_eq!(
            store.rate_limit(&key, 3, window).await.unwrap(),
            RateDecision::Allowed { remaining }
        );
    }
    match store.rate_limit(&key, 3, window).await.unwrap() {
        RateDecision::Limited { retry_after } => {
            assert!(
                retry_after > Duration::ZERO && retry_after <= window,
                "{retry_after:?}"
            )
        }
        other => panic!("fourth hit allowed: {other:?}"),
    }
    // Another key has its own window.
    let other = format!("session-{}", Uuid::new_v4());
    assert_eq!(
        store.rate_limit(&other, 3, window).await.unwrap(),
        RateDecision::Allowed { remaining: 2 }
    );
    h.assert_everything_expires().await;
    h.pass(Duration::from_millis(1100)).await;
    assert_eq!(
        store.rate_limit(&key, 3, window).await.unwrap(),
        RateDecision::Allowed { remaining: 2 }
    );
}

/// `authorize` does what `touch_session`, `rate_limit` and `get_batch` do, in one call, and
/// nothing at all for an unknown session.
pub async fn authorize_in_one_call<H: StateHarness>(h: &H) {
    let store = h.store();
    let now = ms(Utc::now());
    let ttl = Duration::from_secs(60);
    let session = Session {
        id: format!("digest-{}", Uuid::new_v4()),
        created_at: now,
        expires_at: now + chrono::Duration::seconds(1),
    };
    let batch = new_batch(HOUR);
    store.create_batch(&batch).await.unwrap();
    let rate_key = format!("session-{}", Uuid::new_v4());
    let window = Duration::from_secs(60);
    let request = |session_id| Authorize {
        session_id,
        ttl,
        rate: Some(RateLimit {
            key: &rate_key,
            limit: 2,
            window,
        }),
        batch: Some(batch.id),
    };

    // Unknown session: nothing counted.
    assert_eq!(
        store.authorize(&request("digest-unknown")).await.unwrap(),
        None
    );
    store
        .put_session(&session, Duration::from_secs(1))
        .await
        .unwrap();
    let first = store
        .authorize(&request(&session.id))
        .await
        .unwrap()
        .expect("live session");
    assert_eq!(first.session.id, session.id);
    assert!(
        first.session.expires_at > now + chrono::Duration::seconds(30),
        "slid by ttl"
    );
    assert_eq!(
        first.rate,
        RateDecision::Allowed { remaining: 1 },
        "the unknown call counted nothing"
    );
    assert_eq!(first.batch.as_ref(), Some(&batch));

    // The slide is stored: the session outlives its original 1 s.
    h.pass(Duration::from_millis(1500)).await;
    let second = store
        .authorize(&Authorize {
            batch: Some(Uuid::new_v4()),
            ..request(&session.id)
        })
        .await
        .unwrap()
        .expect("slid session");
    assert_eq!(second.rate, RateDecision::Allowed { remaining: 0 });
    assert_eq!(second.batch, None, "an unknown batch reads as none");
    let third = store
        .authorize(&request(&session.id))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(third.rate, RateDecision::Limited { .. }),
        "{:?}",
        third.rate
    );

    // Neither a rate nor a batch asked for.
    let bare = store
        .authorize(&Authorize {
            session_id: &session.id,
            ttl,
            rate: None,
            batch: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        bare.rate,
        RateDecision::Allowed {
            remaining: u32::MAX
        }
    );
    assert_eq!(bare.batch, None);
    h.assert_everything_expires().await;
}

pub async fn delete_batch<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    store.create_batch(&batch).await.unwrap();
    let ps = photos(3);
    store.add_photos(batch.id, &ps, 10).await.unwrap();
    store.mark_effect_done(batch.id, "event").await.unwrap();
    store.delete_batch(batch.id).await.unwrap();
    assert_eq!(store.get_batch(batch.id).await.unwrap(), None);
    assert_eq!(store.get_photo(batch.id, ps[0].id).await.unwrap(), None);
    assert!(!store.is_effect_done(batch.id, "event").await.unwrap());
    store.delete_batch(batch.id).await.unwrap();
    assert!(store.ping().await.is_ok());
}

/// Expands to one `#[tokio::test]` per contract case, each building its harness with
/// `$harness` (an async expression).
#[macro_export]
macro_rules! state_store_contract {
    ($harness:expr) => {
        $crate::state_store_contract!(@cases $harness;
            sessions_slide, batch_lifecycle, add_photos_limit_and_closed,
            closing_a_finished_batch_completes_it, exactly_once_under_concurrent_duplicates,
            pagination, batch_expires, pending_uploads, effects_once, rate_limit_window,
            authorize_in_one_call, delete_batch);
    };
    (@cases $harness:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $harness;
                $crate::testing::contract_state::$case(&harness).await;
            }
        )*
    };
}
