//! One progress subscription per API process, fanned out to its event streams.
//!
//! The state store announces every batch that changed ([`Progress::watch_progress`]:
//! Redis pub/sub, or a broadcast channel in memory). The hub holds the one subscription of
//! this process on a thread of its own and wakes, for each announcement, only the streams
//! watching that batch; they then read the batch once. Without it every stream polled
//! Redis twice a second. When the subscription is lost the hub wakes every stream (they
//! re-read, so nothing is missed) and subscribes again with backoff.
//!
//! The hub lives outside the HTTP workers' runtimes: actix-web stops its workers one by
//! one, and a subscription opened on one of them would die with it.
//!
//! [`Progress::watch_progress`]: tirage_ports::Progress::watch_progress

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures::StreamExt;
use tirage_core::backoff::Backoff;
use tirage_ports::StateStore;
use tokio::sync::watch;
use uuid::Uuid;

/// How often the hub's thread checks that its server still exists, while no announcement
/// arrives.
const LIVENESS_TICK: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Watchers {
    /// Batch → a version bumped on every announcement; each stream holds a receiver.
    batches: HashMap<Uuid, watch::Sender<u64>>,
}

/// The process's fan-out point; cheap to clone.
#[derive(Clone, Default)]
pub struct ProgressHub {
    watchers: Arc<Mutex<Watchers>>,
}

/// A stream's view of one batch's announcements; stops watching when dropped.
pub struct BatchWatch {
    batch_id: Uuid,
    receiver: Option<watch::Receiver<u64>>,
    watchers: Arc<Mutex<Watchers>>,
}

impl BatchWatch {
    /// Waits for the next announcement of the batch (several while the caller was busy
    /// count as one). Pending forever if the hub is gone; callers wait with a timeout.
    pub async fn changed(&mut self) {
        if let Some(receiver) = self.receiver.as_mut()
            && receiver.changed().await.is_ok()
        {
            return;
        }
        futures::future::pending::<()>().await
    }
}

impl Drop for BatchWatch {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut watchers = lock(&self.watchers);
        if watchers
            .batches
            .get(&self.batch_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            watchers.batches.remove(&self.batch_id);
        }
    }
}

fn lock(watchers: &Mutex<Watchers>) -> MutexGuard<'_, Watchers> {
    // Nothing inside the lock panics, so a poisoned lock still holds consistent data.
    watchers.lock().unwrap_or_else(|e| e.into_inner())
}

impl ProgressHub {
    /// Starts the hub's thread: it builds its own store with `make_store` (inside its own
    /// runtime, where the store's connections then live) and keeps one subscription open
    /// until every clone of the hub is dropped.
    pub fn start<F>(make_store: F) -> std::io::Result<ProgressHub>
    where
        F: FnOnce() -> Arc<dyn StateStore> + Send + 'static,
    {
        let hub = ProgressHub::default();
        let weak = Arc::downgrade(&hub.watchers);
        std::thread::Builder::new()
            .name("progress-hub".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        tracing::error!(error = %e, "progress hub: no runtime; streams poll");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let store = make_store();
                    subscribe_loop(store, weak).await;
                });
            })?;
        Ok(hub)
    }

    /// Starts watching `batch_id`.
    pub fn watch(&self, batch_id: Uuid) -> BatchWatch {
        let mut watchers = lock(&self.watchers);
        let receiver = watchers
            .batches
            .entry(batch_id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        BatchWatch {
            batch_id,
            receiver: Some(receiver),
            watchers: self.watchers.clone(),
        }
    }

    /// How many batches this process's streams watch (a gauge for tests and metrics).
    pub fn watched(&self) -> usize {
        lock(&self.watchers).batches.len()
    }
}

fn wake(watchers: &Mutex<Watchers>, batch_id: Option<Uuid>) {
    let watchers = lock(watchers);
    let bump = |sender: &watch::Sender<u64>| sender.send_modify(|v| *v = v.wrapping_add(1));
    match batch_id {
        Some(id) => {
            if let Some(sender) = watchers.batches.get(&id) {
                bump(sender);
            }
        }
        None => watchers.batches.values().for_each(bump),
    }
}

async fn subscribe_loop(store: Arc<dyn StateStore>, weak: Weak<Mutex<Watchers>>) {
    let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut failures = 0u32;
    loop {
        if weak.strong_count() == 0 {
            return;
        }
        let mut feed = match store.watch_progress().await {
            Ok(feed) => {
                if failures > 0 {
                    tracing::info!("progress subscription restored");
                }
                failures = 0;
                feed
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!(error = %e, "progress subscription failed; streams poll");
                }
                tokio::time::sleep(backoff.delay(failures)).await;
                continue;
            }
        };
        // Whatever changed while unsubscribed was not announced: every stream re-reads.
        if let Some(watchers) = weak.upgrade() {
            wake(&watchers, None);
        }
        loop {
            match tokio::time::timeout(LIVENESS_TICK, feed.next()).await {
                Ok(Some(batch_id)) => match weak.upgrade() {
                    Some(watchers) => wake(&watchers, Some(batch_id)),
                    None => return,
                },
                Ok(None) => {
                    tracing::warn!("progress subscription lost; subscribing again");
                    break;
                }
                Err(_idle) if weak.strong_count() == 0 => return,
                Err(_idle) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tirage_embedded::MemoryStateStore;
    use tirage_testkit::contract_state::{new_batch, photos};

    use super::*;

    #[tokio::test]
    async fn announcements_wake_only_the_watchers_of_their_batch() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
        let for_hub = store.clone();
        // The hub subscribes only once the watchers below exist, so that its first
        // subscription's "everyone re-read" reaches them instead of racing them.
        let (watchers_ready, hub_may_subscribe) = std::sync::mpsc::channel::<()>();
        let hub = ProgressHub::start(move || {
            let _ = hub_may_subscribe.recv();
            for_hub
        })
        .unwrap();
        let [a, b] = [
            new_batch(Duration::from_secs(60)),
            new_batch(Duration::from_secs(60)),
        ];
        store
            .create_batch(&a, tirage_ports::Cap::Unlimited)
            .await
            .unwrap();
        store
            .create_batch(&b, tirage_ports::Cap::Unlimited)
            .await
            .unwrap();
        let mut watch_a = hub.watch(a.id);
        let mut watch_b = hub.watch(b.id);
        let mut watch_a2 = hub.watch(a.id);
        assert_eq!(hub.watched(), 2);
        watchers_ready.send(()).unwrap();
        // Its first subscription wakes everyone: changes before it were not announced.
        tokio::time::timeout(Duration::from_secs(10), watch_b.changed())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), watch_a.changed())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), watch_a2.changed())
            .await
            .unwrap();

        store.add_photos(a.id, &photos(1), 10).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), watch_a.changed())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), watch_a2.changed())
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(200), watch_b.changed())
                .await
                .is_err(),
            "b was woken by a's change"
        );

        drop(watch_a);
        assert_eq!(hub.watched(), 2, "a is still watched by a second stream");
        drop(watch_a2);
        drop(watch_b);
        assert_eq!(hub.watched(), 0);
    }
}
