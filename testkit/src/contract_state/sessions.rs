//! Sessions, rate limits, and both in one `authorize` call.

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::harness::{HOUR, StateHarness, create, ms, new_batch};
use tirage_ports::{Authorize, RateDecision, Session, SessionRate};

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
    store.put_session(&session, ttl, None).await.unwrap();
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
    create(&*store, &batch).await;
    let window = Duration::from_secs(60);
    let request = |session_id| Authorize {
        session_id,
        ttl,
        rate: Some(SessionRate { limit: 2, window }),
        batch: Some(batch.id),
    };

    // Unknown session (not stored yet): nothing counted on its counter.
    assert_eq!(store.authorize(&request(&session.id)).await.unwrap(), None);
    store
        .put_session(&session, Duration::from_secs(1), None)
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
