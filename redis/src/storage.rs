//! The bytes each session and client address is charged ([`Storage`]). Each count lives in
//! its own slot (`charge_count.lua`, `refund_count.lua`) and each batch's charge record in
//! the batch's (`batch_charge.lua`), so one charge is three steps, in the order that errs on
//! the safe side when a step fails between them: the session's count, the address's (the
//! session's given back when the address refuses), then the batch's record. A count charged
//! whose record was never written keeps those bytes until it lapses: a payer may be charged
//! too much for a while, never too little.

use async_trait::async_trait;
use chrono::Utc;
use uuid::Uuid;

use super::RedisStateStore;
use super::codec::redis_error;
use tirage_core::model::Batch;
use tirage_ports::{
    CHARGE_GRACE, Charge, Payer, PayerKind, StateError, Storage, StorageCaps, StoredBytes,
};

/// Until when (ms since the epoch) a charge under `batch` is kept without a sweep.
fn kept_until_ms(batch: &Batch) -> i64 {
    let grace = i64::try_from(CHARGE_GRACE.as_millis()).unwrap_or(i64::MAX);
    batch.expires_at.timestamp_millis().saturating_add(grace)
}

/// The payer `batch_charge.lua` answered with, and the bytes it applied.
struct Applied {
    session: String,
    address: String,
    bytes: u64,
}

impl RedisStateStore {
    /// Charges one count; `Some(held)` when its cap refused.
    async fn charge_count(
        &self,
        count: &str,
        bytes: u64,
        cap: u64,
        until_ms: i64,
    ) -> Result<Option<u64>, StateError> {
        let (charged, held): (i64, u64) = self
            .scripts
            .charge_count(count)
            .arg(bytes)
            .arg(cap)
            .arg(until_ms)
            .arg(Utc::now().timestamp_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok((charged != 1).then_some(held))
    }

    async fn refund_count(&self, count: &str, bytes: u64) -> Result<(), StateError> {
        let _: i64 = self
            .scripts
            .refund_count(count)
            .arg(bytes)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    /// Runs `batch_charge.lua` on the batch's record with `args` after the mode.
    async fn batch_charge(
        &self,
        batch_id: Uuid,
        mode: &str,
        args: &[String],
    ) -> Result<Option<Applied>, StateError> {
        let mut invocation = self.scripts.batch_charge(&self.keys.batch_stored(batch_id));
        invocation.arg(mode);
        for arg in args {
            invocation.arg(arg);
        }
        let reply: Vec<String> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        let Ok([session, address, bytes]) = <[String; 3]>::try_from(reply) else {
            return Ok(None);
        };
        let bytes = bytes
            .parse()
            .map_err(|_| StateError::Corrupt(format!("charged bytes {bytes:?}")))?;
        Ok(Some(Applied {
            session,
            address,
            bytes,
        }))
    }

    /// Takes `applied` back from its payer's counts.
    async fn refund_payer(&self, applied: &Applied) -> Result<(), StateError> {
        self.refund_count(&self.keys.session_stored(&applied.session), applied.bytes)
            .await?;
        if !applied.address.is_empty() {
            self.refund_count(&self.keys.address_stored(&applied.address), applied.bytes)
                .await?;
        }
        Ok(())
    }

    /// Gives back everything charged under `batch_id` (its sweep: the objects are gone).
    pub(super) async fn release_stored(&self, batch_id: Uuid) -> Result<(), StateError> {
        if let Some(applied) = self.batch_charge(batch_id, "release", &[]).await? {
            self.refund_payer(&applied).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Storage for RedisStateStore {
    async fn charge_stored(
        &self,
        batch: &Batch,
        payer: Payer<'_>,
        bytes: u64,
        caps: StorageCaps,
    ) -> Result<Charge, StateError> {
        let until = kept_until_ms(batch);
        let session = self.keys.session_stored(payer.session_id);
        let cap = caps.per_session.as_script_arg();
        if let Some(held) = self.charge_count(&session, bytes, cap, until).await? {
            let payer = PayerKind::Session;
            return Ok(Charge::Refused { payer, held, cap });
        }
        let address = self.keys.address_stored(payer.address);
        let cap = caps.per_address.as_script_arg();
        if let Some(held) = self.charge_count(&address, bytes, cap, until).await? {
            self.refund_count(&session, bytes).await?;
            let payer = PayerKind::Address;
            return Ok(Charge::Refused { payer, held, cap });
        }
        let args = [
            bytes.to_string(),
            payer.session_id.to_owned(),
            payer.address.to_owned(),
            until.to_string(),
            Utc::now().timestamp_millis().to_string(),
        ];
        self.batch_charge(batch.id, "add", &args).await?;
        Ok(Charge::Charged)
    }

    async fn charge_renditions(&self, batch: &Batch, bytes: u64) -> Result<(), StateError> {
        let until = kept_until_ms(batch);
        let args = [
            bytes.to_string(),
            batch.owner.clone(),
            String::new(),
            until.to_string(),
            Utc::now().timestamp_millis().to_string(),
        ];
        let Some(payer) = self.batch_charge(batch.id, "add", &args).await? else {
            return Ok(());
        };
        self.charge_count(&self.keys.session_stored(&payer.session), bytes, 0, until)
            .await?;
        if !payer.address.is_empty() {
            let address = self.keys.address_stored(&payer.address);
            self.charge_count(&address, bytes, 0, until).await?;
        }
        Ok(())
    }

    async fn refund_stored(&self, batch_id: Uuid, bytes: u64) -> Result<(), StateError> {
        let args = [bytes.to_string()];
        if let Some(applied) = self.batch_charge(batch_id, "refund", &args).await? {
            self.refund_payer(&applied).await?;
        }
        Ok(())
    }

    async fn stored_bytes(&self, payer: Payer<'_>) -> Result<StoredBytes, StateError> {
        let keys = [
            self.keys.session_stored(payer.session_id),
            self.keys.address_stored(payer.address),
        ];
        let mut counts = [0u64; 2];
        for (count, key) in counts.iter_mut().zip(&keys) {
            let value: Option<u64> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut self.conn())
                .await
                .map_err(redis_error)?;
            *count = value.unwrap_or(0);
        }
        Ok(StoredBytes {
            session: counts[0],
            address: counts[1],
        })
    }
}
