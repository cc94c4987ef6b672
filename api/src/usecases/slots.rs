//! A long answer's slots — an event stream's (`follow`), an archive's (`archive`) — among
//! those of its session and of its client address, each held as a lease in the state store,
//! so that the caps hold across every API replica: renewed while the answer lives, given back
//! when it is dropped, and lapsing by themselves when the replica dies.

use std::sync::Arc;
use std::time::Duration;

use tirage_ports::StateStore;
use tokio::sync::Mutex;
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::ApiError;

/// One of the caps a long answer counts against: its holder (the session's leases of one
/// kind, or its client address's), whose it is, and how many it may hold at once.
pub struct Cap {
    pub holder: String,
    pub scope: &'static str,
    pub limit: u32,
}

/// A cap with no slot left: whose it is (`session` or `address`) and how many it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub scope: &'static str,
    pub limit: u32,
}

/// One answer's slots, one under each of its caps; given back when dropped.
pub struct Lease {
    store: Arc<dyn StateStore>,
    caps: Vec<Cap>,
    id: Uuid,
    length: Duration,
    renewed: Mutex<Instant>,
}

impl Lease {
    /// Takes a slot under each of `caps`, in order, for `length`; `Ok(Err(full))` when one
    /// of them has none left (the slots taken before it are given back).
    pub async fn open(
        store: Arc<dyn StateStore>,
        caps: Vec<Cap>,
        length: Duration,
    ) -> Result<Result<Lease, Full>, ApiError> {
        let id = Uuid::new_v4();
        for (i, cap) in caps.iter().enumerate() {
            let opened = store.open_stream(&cap.holder, id, cap.limit, length).await;
            if !matches!(opened, Ok(true)) {
                for taken in &caps[..i] {
                    if let Err(e) = store.close_stream(&taken.holder, id).await {
                        tracing::debug!(error = %e, "answer lease left to lapse");
                    }
                }
                let full = Full {
                    scope: cap.scope,
                    limit: cap.limit,
                };
                return opened.map(|_| Err(full)).map_err(ApiError::from);
            }
        }
        Ok(Ok(Lease {
            store,
            caps,
            id,
            length,
            renewed: Mutex::new(Instant::now()),
        }))
    }

    /// Pushes the slots' end further; false when one lapsed and was taken.
    pub async fn renew(&self) -> bool {
        let mut held = true;
        for cap in &self.caps {
            let renew = self
                .store
                .open_stream(&cap.holder, self.id, cap.limit, self.length);
            held &= match renew.await {
                Ok(held) => held,
                // A passing outage: the lease is still good for a while.
                Err(e) => {
                    tracing::warn!(error = %e, "answer lease not renewed");
                    true
                }
            };
        }
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
        let (store, id) = (self.store.clone(), self.id);
        let holders: Vec<String> = self.caps.iter().map(|c| c.holder.clone()).collect();
        // Outside a runtime (the process is ending) the lease lapses by itself.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for holder in holders {
                    if let Err(e) = store.close_stream(&holder, id).await {
                        tracing::debug!(error = %e, "answer lease left to lapse");
                    }
                }
            });
        }
    }
}

/// The caps a long answer of `kind` counts against: its session's `per_session`, and its
/// client address's `per_address` across its sessions unless that is 0. `kind` names the
/// session's leases of that kind (the event streams' are named by the session id alone, as
/// before addresses were counted).
pub fn caps(
    session_id: &str,
    address: &str,
    kind: &str,
    per_session: u32,
    per_address: u32,
) -> Vec<Cap> {
    let session = if kind == STREAMS {
        session_id.to_owned()
    } else {
        format!("{session_id}:{kind}")
    };
    let mut caps = vec![Cap {
        holder: session,
        scope: "session",
        limit: per_session,
    }];
    if per_address > 0 {
        caps.push(Cap {
            holder: format!("address:{address}:{kind}"),
            scope: "address",
            limit: per_address,
        });
    }
    caps
}

/// The kind of the event streams' leases.
pub const STREAMS: &str = "streams";
