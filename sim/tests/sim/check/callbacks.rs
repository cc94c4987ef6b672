//! I8, a completed batch's callback: its receiver takes it at most once, unless a fault the
//! documentation lists excuses a second (the receiver's answer lost, its sender dead before
//! marking it done, the mark lost in a restart); a receiver that takes every callback takes
//! it at least once; any other is tried at least once (a silent or failing one until the
//! callback is given up, a refusing one once); and the callback is marked done.

use tirage_core::codes::Effect;
use tirage_core::model::Batch;
use tirage_ports::StateStore;

use super::Verdict;
use crate::ledger::Ledger;
use crate::receivers::{Manner, Receivers};

pub async fn callback_once(
    verdict: &mut Verdict,
    (ledger, receivers): (&Ledger, &Receivers),
    state: &dyn StateStore,
    batch: &Batch,
    label: &str,
) {
    let Some(url) = batch.callback_url.as_deref() else {
        return;
    };
    let log = ledger.callback_log(batch.id);
    if log.taken > 1 {
        let breach = format!("I8 {label}: its callback was taken {} times", log.taken);
        match ledger.excuse_of(batch.id, Effect::Callback) {
            Some(why) => verdict.known(&format!("I8 callback repeated: {why}"), breach),
            None => verdict.violation(format!("{breach}, no fault excuses it")),
        }
    }
    let manner = receivers.manner_of(url);
    if manner == Some(Manner::Prompt) && log.taken == 0 {
        verdict.violation(format!(
            "I8 {label}: its receiver takes every callback, yet took none ({} attempts)",
            log.attempts
        ));
    }
    if log.attempts == 0 {
        verdict.violation(format!(
            "I8 {label}: its callback was never tried ({manner:?} receiver)"
        ));
    }
    let marked = state
        .is_effect_done(batch.id, Effect::Callback)
        .await
        .unwrap_or(false);
    if !marked {
        verdict.violation(format!("I8 {label}: its callback is not marked done"));
    }
}
