//! The Lua scripts behind every multi-key change (one file each under `scripts/`, its
//! header naming its KEYS and ARGV), and one builder per script that passes the keys in the
//! order that header names them. Callers add the ARGV. Every script's keys share one hash
//! tag (one Redis Cluster slot).

use redis::{Script, ScriptInvocation};

use super::keys::BatchKeys;

pub(super) struct Scripts {
    create_batch: Script,
    count_session: Script,
    hold_open_batch: Script,
    add_photos: Script,
    close_batch: Script,
    record_outcome: Script,
    get_photo: Script,
    run_hold: Script,
    take_lease: Script,
    advance_consumed: Script,
    watch_batch: Script,
    restore_lost: Script,
    list_photos: Script,
    put_pending: Script,
    take_pending: Script,
    mark_effect: Script,
    claim_effect: Script,
    rate_limit: Script,
    authorize: Script,
    charge_count: Script,
    refund_count: Script,
    batch_charge: Script,
}

/// An invocation of `script` with `keys` as KEYS[1..].
fn with_keys<'a>(script: &'a Script, keys: &[&str]) -> ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    for key in keys {
        invocation.key(*key);
    }
    invocation
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            create_batch: Script::new(include_str!("scripts/create_batch.lua")),
            count_session: Script::new(include_str!("scripts/count_session.lua")),
            hold_open_batch: Script::new(include_str!("scripts/hold_open_batch.lua")),
            add_photos: Script::new(include_str!("scripts/add_photos.lua")),
            close_batch: Script::new(include_str!("scripts/close_batch.lua")),
            record_outcome: Script::new(include_str!("scripts/record_outcome.lua")),
            get_photo: Script::new(include_str!("scripts/get_photo.lua")),
            run_hold: Script::new(include_str!("scripts/run_hold.lua")),
            take_lease: Script::new(include_str!("scripts/take_lease.lua")),
            advance_consumed: Script::new(include_str!("scripts/advance_consumed.lua")),
            watch_batch: Script::new(include_str!("scripts/watch_batch.lua")),
            restore_lost: Script::new(include_str!("scripts/restore_lost.lua")),
            list_photos: Script::new(include_str!("scripts/list_photos.lua")),
            put_pending: Script::new(include_str!("scripts/put_pending.lua")),
            take_pending: Script::new(include_str!("scripts/take_pending.lua")),
            mark_effect: Script::new(include_str!("scripts/mark_effect.lua")),
            claim_effect: Script::new(include_str!("scripts/claim_effect.lua")),
            rate_limit: Script::new(include_str!("scripts/rate_limit.lua")),
            authorize: Script::new(include_str!("scripts/authorize.lua")),
            charge_count: Script::new(include_str!("scripts/charge_count.lua")),
            refund_count: Script::new(include_str!("scripts/refund_count.lua")),
            batch_charge: Script::new(include_str!("scripts/batch_charge.lua")),
        }
    }

    pub fn create_batch(&self, k: &BatchKeys) -> ScriptInvocation<'_> {
        with_keys(
            &self.create_batch,
            &[
                &k.batch,
                &k.photos,
                &k.order,
                &k.outcomes,
                &k.pending,
                &k.effects,
                &k.runs,
                &k.pending_exp,
            ],
        )
    }

    pub fn hold_open_batch(&self, owner_batches: &str) -> ScriptInvocation<'_> {
        with_keys(&self.hold_open_batch, &[owner_batches])
    }

    pub fn count_session(&self, address_sessions: &str) -> ScriptInvocation<'_> {
        with_keys(&self.count_session, &[address_sessions])
    }

    pub fn add_photos(&self, k: &BatchKeys) -> ScriptInvocation<'_> {
        with_keys(
            &self.add_photos,
            &[&k.batch, &k.photos, &k.order, &k.pending, &k.pending_exp],
        )
    }

    pub fn close_batch(&self, batch_hash: &str) -> ScriptInvocation<'_> {
        with_keys(&self.close_batch, &[batch_hash])
    }

    pub fn record_outcome(&self, k: &BatchKeys) -> ScriptInvocation<'_> {
        with_keys(&self.record_outcome, &[&k.batch, &k.photos, &k.outcomes])
    }

    pub fn get_photo(&self, k: &BatchKeys) -> ScriptInvocation<'_> {
        with_keys(&self.get_photo, &[&k.photos, &k.outcomes])
    }

    pub fn run_hold(&self, k: &BatchKeys) -> ScriptInvocation<'_> {
        with_keys(&self.run_hold, &[&k.batch, &k.runs])
    }

    pub fn take_lease(&self, lease: &str) -> ScriptInvocation<'_> {
        with_keys(&self.take_lease, &[lease])
    }

    pub fn advance_consumed(&self, mark: &str) -> ScriptInvocation<'_> {
        with_keys(&self.advance_consumed, &[mark])
    }

    pub fn restore_lost(&self, k: &BatchKeys) -> ScriptInvocation<'_> {
        with_keys(
            &self.restore_lost,
            &[&k.batch, &k.order, &k.photos, &k.outcomes],
        )
    }

    pub fn watch_batch(&self, batch_hash: &str) -> ScriptInvocation<'_> {
        with_keys(&self.watch_batch, &[batch_hash])
    }

    pub fn list_photos(&self, k: &BatchKeys) -> ScriptInvocation<'_> {
        with_keys(
            &self.list_photos,
            &[&k.batch, &k.order, &k.photos, &k.outcomes],
        )
    }

    pub fn put_pending(&self, k: &BatchKeys) -> ScriptInvocation<'_> {
        with_keys(&self.put_pending, &[&k.batch, &k.pending, &k.pending_exp])
    }

    pub fn take_pending(&self, k: &BatchKeys) -> ScriptInvocation<'_> {
        with_keys(&self.take_pending, &[&k.pending, &k.pending_exp])
    }

    pub fn mark_effect(&self, k: &BatchKeys) -> ScriptInvocation<'_> {
        with_keys(&self.mark_effect, &[&k.batch, &k.effects])
    }

    pub fn claim_effect(&self, k: &BatchKeys) -> ScriptInvocation<'_> {
        with_keys(&self.claim_effect, &[&k.batch, &k.effects])
    }

    pub fn rate_limit(&self, counter: &str) -> ScriptInvocation<'_> {
        with_keys(&self.rate_limit, &[counter])
    }

    pub fn charge_count(&self, count: &str) -> ScriptInvocation<'_> {
        with_keys(&self.charge_count, &[count])
    }

    pub fn refund_count(&self, count: &str) -> ScriptInvocation<'_> {
        with_keys(&self.refund_count, &[count])
    }

    pub fn batch_charge(&self, record: &str) -> ScriptInvocation<'_> {
        with_keys(&self.batch_charge, &[record])
    }

    pub fn authorize(&self, session: &str, session_rate: &str) -> ScriptInvocation<'_> {
        with_keys(&self.authorize, &[session, session_rate])
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::BATCH_FIELDS;

    /// The scripts name the batch fields literally; they must be the ones the codec reads.
    #[test]
    fn scripts_return_the_batch_fields_in_codec_order() {
        let fields = BATCH_FIELDS.map(|f| format!("'{f}'")).join(", ");
        for script in [
            include_str!("scripts/add_photos.lua"),
            include_str!("scripts/close_batch.lua"),
            include_str!("scripts/record_outcome.lua"),
        ] {
            let reads = script.matches("'meta'").count();
            assert!(reads > 0, "{script}");
            assert_eq!(script.matches(&fields).count(), reads, "{script}");
        }
    }

    /// Every script starts with its contract: what KEYS and ARGV it takes.
    #[test]
    fn every_script_names_its_keys_and_args() {
        for script in [
            include_str!("scripts/create_batch.lua"),
            include_str!("scripts/count_session.lua"),
            include_str!("scripts/hold_open_batch.lua"),
            include_str!("scripts/add_photos.lua"),
            include_str!("scripts/close_batch.lua"),
            include_str!("scripts/record_outcome.lua"),
            include_str!("scripts/get_photo.lua"),
            include_str!("scripts/run_hold.lua"),
            include_str!("scripts/take_lease.lua"),
            include_str!("scripts/watch_batch.lua"),
            include_str!("scripts/restore_lost.lua"),
            include_str!("scripts/list_photos.lua"),
            include_str!("scripts/put_pending.lua"),
            include_str!("scripts/take_pending.lua"),
            include_str!("scripts/mark_effect.lua"),
            include_str!("scripts/rate_limit.lua"),
            include_str!("scripts/authorize.lua"),
        ] {
            assert!(script.starts_with("--"), "{script}");
            assert!(script.contains("-- KEYS[1]"), "{script}");
            assert!(script.contains("-- ARGV"), "{script}");
        }
    }
}
