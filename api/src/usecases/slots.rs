//! A session's slot among its long answers of one kind — event streams (`follow`), archives
//! (`archive`) — held as a lease in the state store, so that the cap holds across every API
//! replica: renewed while the answer lives, given back when it is dropped, and lapsing by
//! itself when its replica dies.

use std::sync::Arc;
use std::time::Duration;

use tirage_ports::StateStore;
use tokio::sync::Mutex;
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::ApiError;

/// One answer's slot; given back when dropped.
pub struct Lease {
    store: Arc<dyn StateStore>,
    /// The session's leases of this kind: its id, with the kind for any but event streams.
    holder: String,
    id: Uuid,
    limit: u32,
    length: Duration,
    renewed: Mutex<Instant>,
}

impl Lease {
    /// Takes a slot among `holder`'s `limit`, for `length`; `None` when all are taken.
    pub async fn open(
        store: Arc<dyn StateStore>,
        holder: String,
        limit: u32,
        length: Duration,
    ) -> Result<Option<Lease>, ApiError> {
        let id = Uuid::new_v4();
        let opened = store.open_stream(&holder, id, limit, length).await?;
        Ok(opened.then_some(Lease {
            store,
            holder,
            id,
            limit,
            length,
            renewed: Mutex::new(Instant::now()),
        }))
    }

    /// Pushes the lease's end further; false when it lapsed and its slot was taken.
    pub async fn renew(&self) -> bool {
        let renew = self
            .store
            .open_stream(&self.holder, self.id, self.limit, self.length);
        let held = match renew.await {
            Ok(held) => held,
            // A passing outage: the lease is still good for a while.
            Err(e) => {
                tracing::warn!(error = %e, "answer lease not renewed");
                true
            }
        };
        *self.renewed.lock().await = Instant::now();
        held
    }

    /// Renews the lease when a third of its length has passed since it was last renewed.
    pub async fn renew_when_due(&self) {
        let due = self.renewed.lock().await.elapsed() >= self.length / 3;
        if due {
            self.renew().await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (store, holder, id) = (self.store.clone(), self.holder.clone(), self.id);
        // Outside a runtime (the process is ending) the lease lapses by itself.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.close_stream(&holder, id).await {
                    tracing::debug!(error = %e, "answer lease left to lapse");
                }
            });
        }
    }
}
