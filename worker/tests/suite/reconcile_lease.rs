//! One reconciler at a time, even when one stalls: a worker whose pass stalls (here, inside
//! its object store's delete of an expired batch, for longer than its lease but shorter than
//! its `io_timeout_ms`, as a frozen process or a slow call would) loses the lease to another
//! worker, which does the work; when the first one wakes, it repairs nothing more.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tirage_core::keys;
use tirage_ports::ObjectStoreError;
use tirage_testkit::intercepted::{Intercepted, ObjectHooks};
use tirage_worker::Repair;
use tokio::sync::Notify;

use crate::common::*;

/// Hooks whose `delete_prefix` of one prefix waits until released, and which remember every
/// prefix deleted.
struct StallOnDelete {
    stall_on: String,
    stalled: Notify,
    release: Notify,
    deleted: Mutex<Vec<String>>,
}

#[async_trait]
impl ObjectHooks for StallOnDelete {
    async fn before_delete_prefix(&self, prefix: &str) -> Result<(), ObjectStoreError> {
        self.deleted.lock().unwrap().push(prefix.to_owned());
        if prefix == self.stall_on {
            let released = self.release.notified();
            self.stalled.notify_one();
            released.await;
        }
        Ok(())
    }
}

/// A batch that expires `after` from now, with one object stored under its prefix.
async fn expiring_batch(ports: &tirage_worker::Ports, after: chrono::Duration) -> uuid::Uuid {
    let mut batch = new_batch(small_options(), None);
    batch.expires_at = chrono::Utc::now() + after;
    ports
        .state
        .create_batch(&batch, tirage_ports::Cap::Unlimited)
        .await
        .unwrap();
    let key = keys::original_key(batch.id, uuid::Uuid::new_v4());
    let body = Bytes::from_static(b"bytes");
    ports.objects.put(&key, body, "image/jpeg").await.unwrap();
    batch.id
}

/// Worker A stalls inside its sweep of the first of two expired batches until worker B has
/// taken the lease and swept both; woken, A sweeps nothing more (it used to go on with its
/// page and sweep the second batch too, while B held the lease).
pub async fn a_stalled_reconciler_repairs_nothing_after_losing_its_lease(
    h: std::sync::Arc<dyn Harness>,
) {
    let ports = h.ports();
    let first = expiring_batch(&ports, chrono::Duration::milliseconds(300)).await;
    let second = expiring_batch(&ports, chrono::Duration::milliseconds(400)).await;
    // Both have expired before A reads its first page: one page holds both, first first.
    // (A worker sweeps a batch 5 s after it expires, the clock skew it allows between hosts.)
    tokio::time::sleep(Duration::from_millis(5_600)).await;
    let mut settings = h.settings();
    // The lease lasts three periods (300 ms); a call may take 20 s before it times out.
    settings.reconcile_every_ms = 100;
    settings.io_timeout_ms = 20_000;
    let stalling = Arc::new(StallOnDelete {
        stall_on: keys::batch_prefix(first),
        stalled: Notify::new(),
        release: Notify::new(),
        deleted: Mutex::new(Vec::new()),
    });
    let mut a_ports = ports.clone();
    a_ports.objects = Arc::new(Intercepted {
        inner: ports.objects.clone(),
        hooks: stalling.clone(),
    });
    let a = start(a_ports, settings.clone(), Some(fake_engine())).await;
    tokio::time::timeout(WAIT, stalling.stalled.notified())
        .await
        .expect("worker A never reached the first batch's sweep");

    // B takes the lease once A's lapses, and sweeps both batches.
    let b = start(ports.clone(), settings, Some(fake_engine())).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let indexed = ports.state.indexed_batches(0, 100).await.unwrap();
        if !indexed.iter().any(|i| i.id == first || i.id == second) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker B never swept the two batches"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.metrics.reconciled_count(Repair::Swept), 2);

    // A wakes: it finishes the delete it was in (idempotent), then finds the lease gone.
    stalling.release.notify_one();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deleted = stalling.deleted.lock().unwrap().clone();
    assert_eq!(
        deleted,
        [keys::batch_prefix(first)],
        "worker A went on repairing after its lease went to worker B"
    );
    assert!(a.metrics.reconciled_count(Repair::Swept) <= 1);
    a.shutdown().await;
    b.shutdown().await;
}
