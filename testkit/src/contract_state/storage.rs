//! The bytes each session and client address is charged ([`tirage_ports::Storage`]), and
//! requests charged in bulk on a session's counter.

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::harness::{HOUR, StateHarness, create, ms, new_batch};
use tirage_ports::{
    Authorize, ByteCap, Charge, Payer, PayerKind, RateDecision, Session, SessionRate, StorageCaps,
    StoredBytes,
};

fn caps(per_session: u64, per_address: u64) -> StorageCaps {
    StorageCaps {
        per_session: ByteCap::from_setting(per_session),
        per_address: ByteCap::from_setting(per_address),
    }
}

pub async fn stored_bytes_are_capped_per_session_and_address<H: StateHarness>(h: &H) {
    let store = h.store();
    let address = format!("198.51.100.7-{}", Uuid::new_v4());
    let (first, second) = (new_batch(HOUR), new_batch(HOUR));
    create(&*store, &first).await;
    create(&*store, &second).await;
    fn payer<'a>(batch: &'a tirage_core::model::Batch, address: &'a str) -> Payer<'a> {
        Payer {
            session_id: &batch.owner,
            address,
        }
    }
    let held = |session: u64, address: u64| StoredBytes { session, address };
    let caps = caps(1000, 1500);

    // Up to the session's cap, exactly.
    for bytes in [600, 400] {
        let charged = store.charge_stored(&first, payer(&first, &address), bytes, caps);
        assert_eq!(charged.await.unwrap(), Charge::Charged);
    }
    assert_eq!(
        store.stored_bytes(payer(&first, &address)).await.unwrap(),
        held(1000, 1000)
    );
    // One byte more: refused by the session, nothing charged.
    let refused = store
        .charge_stored(&first, payer(&first, &address), 1, caps)
        .await
        .unwrap();
    assert_eq!(
        refused,
        Charge::Refused {
            payer: PayerKind::Session,
            held: 1000,
            cap: 1000
        }
    );
    assert_eq!(
        store.stored_bytes(payer(&first, &address)).await.unwrap(),
        held(1000, 1000)
    );

    // Another session from the same address: its own session count, the address's shared.
    let charged = store.charge_stored(&second, payer(&second, &address), 500, caps);
    assert_eq!(charged.await.unwrap(), Charge::Charged);
    let refused = store
        .charge_stored(&second, payer(&second, &address), 1, caps)
        .await
        .unwrap();
    assert_eq!(
        refused,
        Charge::Refused {
            payer: PayerKind::Address,
            held: 1500,
            cap: 1500
        }
    );
    // The address refused: the session's count got nothing either.
    assert_eq!(
        store.stored_bytes(payer(&second, &address)).await.unwrap(),
        held(500, 1500)
    );

    // No cap: anything goes, and is counted.
    let unlimited = store.charge_stored(&second, payer(&second, &address), 10_000, caps_none());
    assert_eq!(unlimited.await.unwrap(), Charge::Charged);
    assert_eq!(
        store.stored_bytes(payer(&second, &address)).await.unwrap(),
        held(10_500, 11_500)
    );
    h.assert_everything_expires().await;
}

fn caps_none() -> StorageCaps {
    caps(0, 0)
}

pub async fn charges_last_until_the_batch_is_forgotten<H: StateHarness>(h: &H) {
    let store = h.store();
    let address = format!("203.0.113.7-{}", Uuid::new_v4());
    let batch = new_batch(HOUR);
    create(&*store, &batch).await;
    let payer = Payer {
        session_id: &batch.owner,
        address: &address,
    };
    let held = |session: u64, address: u64| StoredBytes { session, address };
    let charged = store.charge_stored(&batch, payer, 3000, caps_none());
    assert_eq!(charged.await.unwrap(), Charge::Charged);

    // Bytes not kept after all come back, at most what was charged under the batch.
    store.refund_stored(batch.id, 1000).await.unwrap();
    assert_eq!(store.stored_bytes(payer).await.unwrap(), held(2000, 2000));
    store.refund_stored(Uuid::new_v4(), 1000).await.unwrap();
    assert_eq!(
        store.stored_bytes(payer).await.unwrap(),
        held(2000, 2000),
        "another batch's refund takes nothing from this payer"
    );

    // Renditions go to the batch's payer, session and address.
    store.charge_renditions(&batch, 700).await.unwrap();
    assert_eq!(store.stored_bytes(payer).await.unwrap(), held(2700, 2700));

    // A deleted batch's objects are still stored (presigned PUTs stay valid): still charged.
    store.delete_batch(batch.id).await.unwrap();
    assert_eq!(store.stored_bytes(payer).await.unwrap(), held(2700, 2700));
    h.assert_everything_expires().await;

    // Its sweep gives everything back, once.
    store.forget_batch(batch.id).await.unwrap();
    assert_eq!(store.stored_bytes(payer).await.unwrap(), held(0, 0));
    let other = new_batch(HOUR);
    create(&*store, &other).await;
    let other_payer = Payer {
        session_id: &other.owner,
        address: &address,
    };
    let charged = store.charge_stored(&other, other_payer, 500, caps_none());
    assert_eq!(charged.await.unwrap(), Charge::Charged);
    store.forget_batch(batch.id).await.unwrap();
    assert_eq!(
        store.stored_bytes(other_payer).await.unwrap(),
        held(500, 500),
        "forgetting twice gives nothing back twice"
    );

    // A batch charged only by its renditions (charged before this quota existed) charges its
    // owner session.
    let older = new_batch(HOUR);
    create(&*store, &older).await;
    store.charge_renditions(&older, 90).await.unwrap();
    let owner = Payer {
        session_id: &older.owner,
        address: &address,
    };
    assert_eq!(store.stored_bytes(owner).await.unwrap().session, 90);
    h.assert_everything_expires().await;
}

pub async fn requests_charged_in_bulk_count_on_the_session<H: StateHarness>(h: &H) {
    let store = h.store();
    let now = ms(Utc::now());
    let session = Session {
        id: format!("digest-{}", Uuid::new_v4()),
        created_at: now,
        expires_at: now + chrono::Duration::minutes(1),
    };
    let ttl = Duration::from_secs(60);
    store.put_session(&session, ttl, None).await.unwrap();
    let rate = SessionRate {
        limit: 10,
        window: Duration::from_secs(60),
    };
    let authorize = || Authorize {
        session_id: &session.id,
        ttl,
        rate: Some(rate),
        batch: None,
    };
    let one = store.authorize(&authorize()).await.unwrap().unwrap();
    assert_eq!(one.rate, RateDecision::Allowed { remaining: 9 });
    let bulk = store.charge_session_requests(&session.id, 8, rate);
    assert_eq!(bulk.await.unwrap(), RateDecision::Allowed { remaining: 1 });
    let last = store.authorize(&authorize()).await.unwrap().unwrap();
    assert_eq!(last.rate, RateDecision::Allowed { remaining: 0 });
    let past = store
        .charge_session_requests(&session.id, 1, rate)
        .await
        .unwrap();
    assert!(matches!(past, RateDecision::Limited { .. }), "{past:?}");
    let after = store.authorize(&authorize()).await.unwrap().unwrap();
    assert!(
        matches!(after.rate, RateDecision::Limited { .. }),
        "{:?}",
        after.rate
    );
    // Another session's counter is its own.
    let other_id = format!("digest-{}", Uuid::new_v4());
    let other = store.charge_session_requests(&other_id, 10, rate);
    assert_eq!(other.await.unwrap(), RateDecision::Allowed { remaining: 0 });
    h.assert_everything_expires().await;
}
