//! What outlives a call: pending uploads, effect markers, expiry and deletion.

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::harness::{HOUR, StateHarness, create, done, ms, new_batch, photos};
use tirage_core::codes::Effect;
use tirage_ports::{PendingUpload, StateError};

/// Everything about a batch disappears at its `expires_at`.
pub async fn batch_expires<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(Duration::from_secs(3));
    create(&*store, &batch).await;
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
    assert!(
        store
            .mark_effect_done(batch.id, Effect::Event)
            .await
            .unwrap()
    );
    h.assert_batch_expiry(&batch).await;
    h.assert_everything_expires().await;

    h.pass(Duration::from_millis(3300)).await;
    assert_eq!(store.get_batch(batch.id).await.unwrap(), None);
    assert_eq!(store.get_photo(batch.id, ps[0].id).await.unwrap(), None);
    assert!(matches!(
        store.list_photos(batch.id, None, 10).await,
        Err(StateError::NotFound)
    ));
    assert!(!store.is_effect_done(batch.id, Effect::Event).await.unwrap());
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
    create(&*store, &batch).await;
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
    create(&*store, &batch).await;
    assert!(!store.is_effect_done(batch.id, Effect::Event).await.unwrap());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .mark_effect_done(batch.id, Effect::Event)
                .await
                .unwrap()
        }));
    }
    let mut firsts = 0;
    for t in tasks {
        firsts += u32::from(t.await.unwrap());
    }
    assert_eq!(firsts, 1);
    assert!(store.is_effect_done(batch.id, Effect::Event).await.unwrap());
    assert!(
        !store
            .is_effect_done(batch.id, Effect::Callback)
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_effect_done(batch.id, Effect::Callback)
            .await
            .unwrap()
    );
    // A claim is a marker of its own: one fresh holder per effect, and it does not make
    // the effect done. A claim older than `stale_after` (its holder died) is taken over; a
    // renewed one stays fresh; a released one is free.
    let other = new_batch(HOUR);
    create(&*store, &other).await;
    let t0 = Utc::now();
    let at = |secs: i64| t0 + chrono::Duration::seconds(secs);
    let stale = Duration::from_secs(60);
    let claim = |effect, secs| store.claim_effect(other.id, effect, at(secs), stale);
    assert!(claim(Effect::Event, 0).await.unwrap());
    assert!(!claim(Effect::Event, 0).await.unwrap(), "held");
    assert!(!claim(Effect::Event, 59).await.unwrap(), "still fresh");
    assert!(!store.is_effect_done(other.id, Effect::Event).await.unwrap());
    assert!(
        claim(Effect::Callback, 0).await.unwrap(),
        "one claim per effect"
    );
    assert!(claim(Effect::Event, 61).await.unwrap(), "stale: taken over");
    store
        .renew_effect_claim(other.id, Effect::Event, at(100))
        .await
        .unwrap();
    assert!(!claim(Effect::Event, 150).await.unwrap(), "renewed at 100");
    let claimed_at = |effect| store.effect_claimed_at(other.id, effect);
    // Dates kept to the millisecond, as Redis stores them.
    let ms = |t: chrono::DateTime<Utc>| t.timestamp_millis();
    assert_eq!(
        claimed_at(Effect::Event).await.unwrap().map(ms),
        Some(ms(at(100)))
    );
    assert_eq!(
        claimed_at(Effect::Callback).await.unwrap().map(ms),
        Some(ms(at(0)))
    );
    store
        .release_effect_claim(other.id, Effect::Event)
        .await
        .unwrap();
    assert_eq!(claimed_at(Effect::Event).await.unwrap(), None, "released");
    assert!(claim(Effect::Event, 151).await.unwrap(), "released");
    assert!(matches!(
        store
            .claim_effect(Uuid::new_v4(), Effect::Event, t0, stale)
            .await,
        Err(StateError::NotFound)
    ));
    assert!(matches!(
        store
            .renew_effect_claim(Uuid::new_v4(), Effect::Event, t0)
            .await,
        Err(StateError::NotFound)
    ));
    store
        .release_effect_claim(Uuid::new_v4(), Effect::Event)
        .await
        .unwrap();
    let unknown = store.effect_claimed_at(Uuid::new_v4(), Effect::Event).await;
    assert_eq!(unknown.unwrap(), None, "a batch gone has no claim");
    h.assert_batch_expiry(&batch).await;
    h.assert_batch_expiry(&other).await;
}

pub async fn delete_batch<H: StateHarness>(h: &H) {
    let store = h.store();
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let ps = photos(3);
    store.add_photos(batch.id, &ps, 10).await.unwrap();
    store
        .mark_effect_done(batch.id, Effect::Event)
        .await
        .unwrap();
    store.delete_batch(batch.id).await.unwrap();
    assert_eq!(store.get_batch(batch.id).await.unwrap(), None);
    assert_eq!(store.get_photo(batch.id, ps[0].id).await.unwrap(), None);
    assert!(!store.is_effect_done(batch.id, Effect::Event).await.unwrap());
    store.delete_batch(batch.id).await.unwrap();
    assert!(store.ping().await.is_ok());
}
