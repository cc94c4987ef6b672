//! The bytes a session and its client address make the service keep
//! ([`tirage_ports::Storage`]): charged before they are kept, so that a client past its
//! quota stores nothing, and given back when they were not kept after all. The sweep of a
//! batch's objects gives the rest back.

use tirage_core::model::Batch;
use tirage_ports::{Charge, Payer, PayerKind};

use crate::error::ApiError;
use crate::state::AppState;

/// Charges `bytes` about to be kept under `batch` to `payer`; 409 `storage_quota_exceeded`
/// (nothing charged) when the session's or the address's quota would be passed.
pub async fn charge(
    state: &AppState,
    batch: &Batch,
    payer: Payer<'_>,
    bytes: u64,
) -> Result<(), ApiError> {
    let caps = state.settings.limits.storage_caps();
    match state
        .ports
        .state
        .charge_stored(batch, payer, bytes, caps)
        .await?
    {
        Charge::Charged => Ok(()),
        Charge::Refused { payer, held, cap } => {
            tracing::info!(batch_id = %batch.id, payer = payer.as_str(), held, cap, bytes, "storage quota reached");
            Err(exceeded(payer, held, cap))
        }
    }
}

fn exceeded(payer: PayerKind, held: u64, cap: u64) -> ApiError {
    ApiError::StorageQuotaExceeded {
        payer: payer.as_str(),
        held,
        cap,
    }
}

/// Refuses before anything is read when `payer` has no byte of room left: a streamed
/// upload's parts are charged only once stored, and a client at its quota should not send
/// them for nothing.
pub async fn ensure_room(state: &AppState, payer: Payer<'_>) -> Result<(), ApiError> {
    let caps = state.settings.limits.storage_caps();
    let held = state.ports.state.stored_bytes(payer).await?;
    match caps.refusal(held, 1) {
        Some(Charge::Refused { payer, held, cap }) => Err(exceeded(payer, held, cap)),
        _ => Ok(()),
    }
}

/// Gives back bytes charged under `batch` that are not kept; logged, not failed, when the
/// store cannot take them back (the payer is then charged too much until the batch's
/// sweep, never too little).
pub async fn refund(state: &AppState, batch: &Batch, bytes: u64) {
    if bytes == 0 {
        return;
    }
    if let Err(e) = state.ports.state.refund_stored(batch.id, bytes).await {
        tracing::warn!(batch_id = %batch.id, bytes, error = %e, "could not give back bytes not kept; they count until the batch is swept");
    }
}
