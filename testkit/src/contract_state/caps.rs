//! The caps one client may not pass: sessions per creator, open batches per owner, and
//! pending uploads counted against a batch's photo limit.

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::harness::{HOUR, StateHarness, create, ms, new_batch, photos};
use tirage_core::model::Batch;
use tirage_ports::{Cap, PendingUpload, Session, SessionQuota, StateError};

/// The open-batch cap these cases hold the store to.
const TWO: Cap = Cap::AtMost(std::num::NonZeroU32::MIN.saturating_add(1));

fn session() -> Session {
    let now = ms(Utc::now());
    Session {
        id: format!("digest-{}", Uuid::new_v4()),
        created_at: now,
        expires_at: now + chrono::Duration::hours(1),
    }
}

fn pending(expires_in: chrono::Duration) -> PendingUpload {
    PendingUpload {
        photo_id: Uuid::new_v4(),
        filename: "a.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 10,
        expires_at: ms(Utc::now()) + expires_in,
    }
}

/// A creator holds at most `max` sessions made within one session TTL; a refused session
/// is not stored, other creators are not affected, and the count frees up with time.
pub async fn sessions_capped_per_creator<H: StateHarness>(h: &H) {
    let store = h.store();
    let ttl = Duration::from_secs(1);
    let creator = format!("203.0.113.{}", Uuid::new_v4().as_u128() % 200);
    let quota = SessionQuota {
        owner: &creator,
        max: Cap::from_setting(2),
    };
    let (a, b, c) = (session(), session(), session());
    assert!(store.put_session(&a, ttl, Some(quota)).await.unwrap());
    assert!(store.put_session(&b, ttl, Some(quota)).await.unwrap());
    assert!(!store.put_session(&c, ttl, Some(quota)).await.unwrap());
    assert!(store.touch_session(&a.id, ttl).await.unwrap().is_some());
    assert_eq!(store.touch_session(&c.id, ttl).await.unwrap(), None);

    let other = format!("other-{creator}");
    let elsewhere = SessionQuota {
        owner: &other,
        max: Cap::from_setting(2),
    };
    assert!(store.put_session(&c, ttl, Some(elsewhere)).await.unwrap());
    h.assert_everything_expires().await;

    h.pass(Duration::from_millis(1300)).await;
    let d = session();
    assert!(
        store.put_session(&d, ttl, Some(quota)).await.unwrap(),
        "sessions made more than one TTL ago no longer count"
    );
}

fn owned_by(owner: &str, expires_in: Duration) -> Batch {
    Batch {
        owner: owner.to_owned(),
        ..new_batch(expires_in)
    }
}

/// An owner has at most `max_open` open batches: closing, deleting or the expiry of one
/// makes room; a refused batch is not stored; other owners are not affected.
pub async fn open_batches_capped_per_owner<H: StateHarness>(h: &H) {
    let store = h.store();
    let owner = format!("session-{}", Uuid::new_v4());
    let first = owned_by(&owner, HOUR);
    let second = owned_by(&owner, Duration::from_secs(1));
    assert!(store.create_batch(&first, TWO).await.unwrap());
    assert!(store.create_batch(&second, TWO).await.unwrap());
    let refused = owned_by(&owner, HOUR);
    assert!(!store.create_batch(&refused, TWO).await.unwrap());
    assert_eq!(store.get_batch(refused.id).await.unwrap(), None);
    let stranger = owned_by(&format!("session-{}", Uuid::new_v4()), HOUR);
    assert!(store.create_batch(&stranger, TWO).await.unwrap());
    h.assert_everything_expires().await;

    // An expired batch no longer counts.
    h.pass(Duration::from_millis(1300)).await;
    let third = owned_by(&owner, HOUR);
    assert!(store.create_batch(&third, TWO).await.unwrap());
    assert!(
        !store
            .create_batch(&owned_by(&owner, HOUR), TWO)
            .await
            .unwrap()
    );

    // Closed and deleted ones neither.
    store.close_batch(first.id).await.unwrap();
    let fourth = owned_by(&owner, HOUR);
    assert!(store.create_batch(&fourth, TWO).await.unwrap());
    store.delete_batch(third.id).await.unwrap();
    assert!(
        store
            .create_batch(&owned_by(&owner, HOUR), TWO)
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_batch(&owned_by(&owner, HOUR), TWO)
            .await
            .unwrap()
    );
}

/// Live pending uploads hold a place under the photo limit, for new tickets and for
/// registrations alike; a completed, expired or refused ticket holds none.
pub async fn pending_uploads_count_against_the_limit<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let long = chrono::Duration::hours(1);
    let three: Vec<PendingUpload> = (0..3).map(|_| pending(long)).collect();
    store
        .put_pending_uploads(batch.id, &three, 5)
        .await
        .unwrap();

    // All or none: three more would make six.
    let refused: Vec<PendingUpload> = (0..3).map(|_| pending(long)).collect();
    assert!(matches!(
        store.put_pending_uploads(batch.id, &refused, 5).await,
        Err(StateError::TooManyPhotos { limit: 5 })
    ));
    assert_eq!(
        store
            .take_pending_upload(batch.id, refused[0].photo_id)
            .await
            .unwrap(),
        None,
        "a refused ticket is not stored"
    );

    // Registrations count the pending tickets: 3 pending + 2 photos fill the batch.
    store.add_photos(batch.id, &photos(2), 5).await.unwrap();
    assert!(matches!(
        store.add_photos(batch.id, &photos(1), 5).await,
        Err(StateError::TooManyPhotos { limit: 5 })
    ));
    assert!(matches!(
        store
            .put_pending_uploads(batch.id, &[pending(long)], 5)
            .await,
        Err(StateError::TooManyPhotos { .. })
    ));

    // Completing a ticket moves its place from pending to photos.
    let taken = store
        .take_pending_upload(batch.id, three[0].photo_id)
        .await
        .unwrap()
        .expect("the ticket is pending");
    let photo = tirage_core::model::PhotoRecord::queued(taken.photo_id, taken.filename);
    let after = store.add_photos(batch.id, &[photo], 5).await.unwrap();
    assert_eq!(after.total, 3);
    // A photo registered while its ticket is still pending is not counted twice.
    let still = tirage_core::model::PhotoRecord::queued(three[1].photo_id, "b.jpg");
    assert_eq!(
        store.add_photos(batch.id, &[still], 5).await.unwrap().total,
        4
    );

    // A ticket handed back is stored whatever the count.
    store
        .put_pending_upload(batch.id, &pending(long))
        .await
        .unwrap();

    // Expired tickets free their place.
    let roomy = new_batch(HOUR);
    create(&*store, &roomy).await;
    let short: Vec<PendingUpload> = (0..2)
        .map(|_| pending(chrono::Duration::milliseconds(800)))
        .collect();
    store
        .put_pending_uploads(roomy.id, &short, 2)
        .await
        .unwrap();
    assert!(matches!(
        store
            .put_pending_uploads(roomy.id, &[pending(long)], 2)
            .await,
        Err(StateError::TooManyPhotos { .. })
    ));
    h.assert_batch_expiry(&roomy).await;
    h.pass(Duration::from_millis(1200)).await;
    store
        .put_pending_uploads(roomy.id, &[pending(long), pending(long)], 2)
        .await
        .unwrap();

    // A closed batch takes no new tickets; an unknown one is not found.
    store.close_batch(roomy.id).await.unwrap();
    assert!(matches!(
        store
            .put_pending_uploads(roomy.id, &[pending(long)], 9)
            .await,
        Err(StateError::BatchClosed)
    ));
    assert!(matches!(
        store
            .put_pending_uploads(Uuid::new_v4(), &[pending(long)], 9)
            .await,
        Err(StateError::NotFound)
    ));
}
