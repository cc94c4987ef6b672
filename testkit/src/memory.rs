//! The in-memory state store as a contract-suite harness.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::ManualClock;
use super::contract_state;
use tirage_core::model::Batch;
use tirage_embedded::MemoryStateStore;
use tirage_ports::{Batches, StateStore};

/// The in-memory store on a manual clock: time passes only when the test says so.
pub struct MemoryHarness {
    pub store: Arc<MemoryStateStore>,
    pub clock: ManualClock,
}

impl Default for MemoryHarness {
    fn default() -> Self {
        let clock = ManualClock::new(chrono::Utc::now());
        MemoryHarness {
            store: Arc::new(MemoryStateStore::with_clock(Arc::new(clock.clone()))),
            clock,
        }
    }
}

#[async_trait]
impl contract_state::StateHarness for MemoryHarness {
    fn store(&self) -> Arc<dyn StateStore> {
        self.store.clone()
    }

    async fn pass(&self, d: Duration) {
        self.clock.advance(d);
    }

    async fn assert_batch_expiry(&self, batch: &Batch) {
        // The memory store keeps no TTL of its own: expiry is `batch.expires_at`, checked
        // on access, which the cases verify by moving the clock past it.
        let stored = self.store.get_batch(batch.id).await.unwrap().unwrap();
        assert_eq!(stored.expires_at, batch.expires_at);
    }

    async fn assert_everything_expires(&self) {}
}
