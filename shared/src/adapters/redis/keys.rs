//! Every Redis key the store writes, built in one place from the configured prefix `P`:
//! - `P session:{id}` — session JSON, `PX` = TTL, slid by `GETEX`.
//! - `P batch:{id}` — hash: `meta` (the batch JSON as created), `state`, `total`, `done`,
//!   `failed`, `exp` (expiry in unix ms).
//! - `P batch:{id}:photos` — hash photo id → queued record JSON.
//! - `P batch:{id}:order` — list of photo ids in insertion order (pagination).
//! - `P batch:{id}:outcomes` — hash photo id → outcome JSON; `HSETNX` is the exactly-once gate.
//! - `P batch:{id}:pending` — hash photo id → pending upload JSON.
//! - `P batch:{id}:effects` — hash effect → `1`.
//! - `P rate:{key}` — fixed-window counter.

use uuid::Uuid;

/// The key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct KeySpace {
    prefix: String,
}

/// The keys of one batch, each by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchKeys {
    /// The hash of the batch's fields and counters; its existence is the batch's.
    pub batch: String,
    pub photos: String,
    pub order: String,
    pub outcomes: String,
    pub pending: String,
    pub effects: String,
}

impl BatchKeys {
    /// Every key of the batch, to delete them together.
    pub fn all(&self) -> [&str; 6] {
        [
            &self.batch,
            &self.photos,
            &self.order,
            &self.outcomes,
            &self.pending,
            &self.effects,
        ]
    }
}

impl KeySpace {
    pub fn new(prefix: &str) -> Self {
        KeySpace {
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The batch hash alone, for calls that touch nothing else.
    pub fn batch_hash(&self, id: Uuid) -> String {
        format!("{}batch:{id}", self.prefix)
    }

    pub fn batch(&self, id: Uuid) -> BatchKeys {
        let batch = self.batch_hash(id);
        BatchKeys {
            photos: format!("{batch}:photos"),
            order: format!("{batch}:order"),
            outcomes: format!("{batch}:outcomes"),
            pending: format!("{batch}:pending"),
            effects: format!("{batch}:effects"),
            batch,
        }
    }

    pub fn session(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }

    pub fn rate(&self, key: &str) -> String {
        format!("{}rate:{key}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_stored_names() {
        let id = Uuid::nil();
        let keys = KeySpace::new("p:");
        let b = keys.batch(id);
        let base = format!("p:batch:{id}");
        assert_eq!(b.batch, base);
        assert_eq!(
            b.all(),
            [
                base.as_str(),
                &format!("{base}:photos"),
                &format!("{base}:order"),
                &format!("{base}:outcomes"),
                &format!("{base}:pending"),
                &format!("{base}:effects"),
            ]
        );
        assert_eq!(keys.session("s"), "p:session:s");
        assert_eq!(keys.rate("r"), "p:rate:r");
    }
}
