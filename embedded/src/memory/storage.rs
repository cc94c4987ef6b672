//! The bytes each session and client address is charged, in memory ([`Storage`]), with the
//! rules of Redis's `charge_count.lua`, `refund_count.lua` and `batch_charge.lua`: a payer's count lives until the last batch
//! charged to it expires plus [`CHARGE_GRACE`]; a batch remembers its payer and its bytes
//! until [`Upkeep::forget_batch`] gives them back.
//!
//! [`Upkeep::forget_batch`]: tirage_ports::Upkeep::forget_batch

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{MemoryStateStore, after};
use tirage_core::model::Batch;
use tirage_ports::{
    CHARGE_GRACE, Charge, Payer, PayerKind, StateError, Storage, StorageCaps, StoredBytes,
};

/// One payer's count.
struct Count {
    bytes: u64,
    until: DateTime<Utc>,
}

/// What was charged under one batch, and to whom.
struct BatchCharge {
    session: String,
    /// `None`: only renditions were charged, to the owner session alone.
    address: Option<String>,
    bytes: u64,
    until: DateTime<Utc>,
}

#[derive(Default)]
pub(super) struct Ledger {
    counts: HashMap<(PayerKind, String), Count>,
    batches: HashMap<Uuid, BatchCharge>,
}

impl Ledger {
    fn held(&mut self, payer: PayerKind, id: &str, now: DateTime<Utc>) -> u64 {
        let key = (payer, id.to_owned());
        if self.counts.get(&key).is_some_and(|c| c.until <= now) {
            self.counts.remove(&key);
        }
        self.counts.get(&key).map_or(0, |c| c.bytes)
    }

    /// Both of `payer`'s counts.
    fn held_by(&mut self, payer: Payer<'_>, now: DateTime<Utc>) -> StoredBytes {
        StoredBytes {
            session: self.held(PayerKind::Session, payer.session_id, now),
            address: self.held(PayerKind::Address, payer.address, now),
        }
    }

    fn add(&mut self, payer: PayerKind, id: &str, bytes: u64, until: DateTime<Utc>) {
        let count = self
            .counts
            .entry((payer, id.to_owned()))
            .or_insert(Count { bytes: 0, until });
        count.bytes = count.bytes.saturating_add(bytes);
        count.until = count.until.max(until);
    }

    fn take_back(&mut self, payer: PayerKind, id: &str, bytes: u64) {
        let key = (payer, id.to_owned());
        if let Some(count) = self.counts.get_mut(&key) {
            count.bytes = count.bytes.saturating_sub(bytes);
            if count.bytes == 0 {
                self.counts.remove(&key);
            }
        }
    }

    /// The batch's record, made for `session` (and `address`) when it has none yet.
    fn batch_record(
        &mut self,
        batch: &Batch,
        address: Option<&str>,
        until: DateTime<Utc>,
    ) -> &mut BatchCharge {
        let record = self.batches.entry(batch.id).or_insert(BatchCharge {
            session: batch.owner.clone(),
            address: address.map(str::to_owned),
            bytes: 0,
            until,
        });
        record.until = record.until.max(until);
        record
    }

    /// Removes what was charged under `batch_id` from its payer's counts: `bytes`, or
    /// everything with `None` (and then the record too).
    pub(super) fn release(&mut self, batch_id: Uuid, bytes: Option<u64>) {
        let Some(record) = self.batches.get_mut(&batch_id) else {
            return;
        };
        let bytes = bytes.unwrap_or(record.bytes).min(record.bytes);
        record.bytes -= bytes;
        let (session, address) = (record.session.clone(), record.address.clone());
        if record.bytes == 0 {
            self.batches.remove(&batch_id);
        }
        self.take_back(PayerKind::Session, &session, bytes);
        if let Some(address) = address {
            self.take_back(PayerKind::Address, &address, bytes);
        }
    }

    /// Drops counts and records past their time.
    pub(super) fn prune(&mut self, now: DateTime<Utc>) {
        self.counts.retain(|_, c| c.until > now);
        self.batches.retain(|_, b| b.until > now);
    }
}

fn kept_until(batch: &Batch) -> DateTime<Utc> {
    after(batch.expires_at, CHARGE_GRACE)
}

#[async_trait]
impl Storage for MemoryStateStore {
    async fn charge_stored(
        &self,
        batch: &Batch,
        payer: Payer<'_>,
        bytes: u64,
        caps: StorageCaps,
    ) -> Result<Charge, StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let ledger = &mut inner.storage;
        let held = ledger.held_by(payer, now);
        if let Some(refused) = caps.refusal(held, bytes) {
            return Ok(refused);
        }
        let until = kept_until(batch);
        ledger.add(PayerKind::Session, payer.session_id, bytes, until);
        ledger.add(PayerKind::Address, payer.address, bytes, until);
        let record = ledger.batch_record(batch, Some(payer.address), until);
        record.bytes = record.bytes.saturating_add(bytes);
        inner.wrote(now);
        Ok(Charge::Charged)
    }

    async fn charge_renditions(&self, batch: &Batch, bytes: u64) -> Result<(), StateError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let ledger = &mut inner.storage;
        let until = kept_until(batch);
        let record = ledger.batch_record(batch, None, until);
        record.bytes = record.bytes.saturating_add(bytes);
        let (session, address) = (record.session.clone(), record.address.clone());
        ledger.add(PayerKind::Session, &session, bytes, until);
        if let Some(address) = address {
            ledger.add(PayerKind::Address, &address, bytes, until);
        }
        inner.wrote(now);
        Ok(())
    }

    async fn refund_stored(&self, batch_id: Uuid, bytes: u64) -> Result<(), StateError> {
        self.lock().storage.release(batch_id, Some(bytes));
        Ok(())
    }

    async fn stored_bytes(&self, payer: Payer<'_>) -> Result<StoredBytes, StateError> {
        let now = self.clock.now();
        Ok(self.lock().storage.held_by(payer, now))
    }
}
