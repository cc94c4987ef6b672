//! The bytes a client makes the service keep: every original (a ticket's announced size from
//! the moment the ticket is handed out, a streamed part's stored size) and every rendition
//! is charged to the session and the client address that brought its batch in, and given
//! back only once the batch's objects are gone. Every [`StateStore`] provides it.
//!
//! Charges end with the sweep that removes the batch's objects ([`Upkeep::forget_batch`]),
//! not with a delete or an expiry: a deleted batch's presigned PUTs stay valid for their TTL,
//! and its objects stay stored until that sweep. A charge the sweep never gives back (no
//! worker ran) lapses [`CHARGE_GRACE`] after the batch's expiry.
//!
//! [`StateStore`]: crate::StateStore
//! [`Upkeep::forget_batch`]: crate::Upkeep::forget_batch

use std::num::NonZeroU64;
use std::time::Duration;

use async_trait::async_trait;
use tirage_core::model::Batch;
use uuid::Uuid;

use crate::state_error::StateError;

/// How long past its batch's expiry a charge is kept when no sweep gives it back first.
pub const CHARGE_GRACE: Duration = Duration::from_secs(24 * 3600);

/// How many bytes a payer may be charged at once: a typed value instead of a number where 0
/// means "no cap".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteCap {
    Unlimited,
    AtMost(NonZeroU64),
}

impl ByteCap {
    /// The cap a setting names, where 0 means no cap.
    pub fn from_setting(value: u64) -> ByteCap {
        NonZeroU64::new(value).map_or(ByteCap::Unlimited, ByteCap::AtMost)
    }

    /// Whether `held` plus `more` stays within the cap.
    pub fn admits(self, held: u64, more: u64) -> bool {
        match self {
            ByteCap::Unlimited => true,
            ByteCap::AtMost(max) => held.saturating_add(more) <= max.get(),
        }
    }

    /// The cap as the stores' scripts take it: 0 for none.
    pub fn as_script_arg(self) -> u64 {
        match self {
            ByteCap::Unlimited => 0,
            ByteCap::AtMost(max) => max.get(),
        }
    }
}

/// Who pays for a batch's bytes: the session that made the batch and the client address
/// the API saw for the request that brought them.
#[derive(Debug, Clone, Copy)]
pub struct Payer<'a> {
    pub session_id: &'a str,
    pub address: &'a str,
}

/// The caps of one charge.
#[derive(Debug, Clone, Copy)]
pub struct StorageCaps {
    pub per_session: ByteCap,
    pub per_address: ByteCap,
}

impl StorageCaps {
    /// The refusal a store answers when `bytes` more would take one of the counts `held`
    /// past its cap (the session's checked first); `None` when both admit them.
    pub fn refusal(self, held: StoredBytes, bytes: u64) -> Option<Charge> {
        [
            (PayerKind::Session, held.session, self.per_session),
            (PayerKind::Address, held.address, self.per_address),
        ]
        .into_iter()
        .find(|(_, held, cap)| !cap.admits(*held, bytes))
        .map(|(payer, held, cap)| Charge::Refused {
            payer,
            held,
            cap: cap.as_script_arg(),
        })
    }
}

/// Which of a payer's two counts refused a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayerKind {
    Session,
    Address,
}

impl PayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PayerKind::Session => "session",
            PayerKind::Address => "address",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    Charged,
    /// `payer`'s count holds `held` bytes; with the charge it would pass `cap`. Nothing was
    /// charged to anyone.
    Refused {
        payer: PayerKind,
        held: u64,
        cap: u64,
    },
}

/// What a payer is charged now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredBytes {
    pub session: u64,
    pub address: u64,
}

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Charges `bytes` about to be kept under `batch` to `payer`, unless the session's or
    /// the address's count would pass its cap: then `Refused`, with nothing charged. The
    /// batch remembers its first payer and the bytes charged under it, which
    /// [`Upkeep::forget_batch`] gives back.
    ///
    /// [`Upkeep::forget_batch`]: crate::Upkeep::forget_batch
    async fn charge_stored(
        &self,
        batch: &Batch,
        payer: Payer<'_>,
        bytes: u64,
        caps: StorageCaps,
    ) -> Result<Charge, StateError>;

    /// Charges a batch's renditions, as the worker records them, to the payer the batch
    /// remembers (its owner session alone when it remembers none), against no cap: they are
    /// what the charged originals asked for.
    async fn charge_renditions(&self, batch: &Batch, bytes: u64) -> Result<(), StateError>;

    /// Gives back bytes charged under `batch_id` that were not kept after all (the parts of
    /// an upload that was given up and its originals deleted).
    async fn refund_stored(&self, batch_id: Uuid, bytes: u64) -> Result<(), StateError>;

    /// What `payer` is charged now.
    async fn stored_bytes(&self, payer: Payer<'_>) -> Result<StoredBytes, StateError>;
}
