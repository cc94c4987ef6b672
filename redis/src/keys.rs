//! Every Redis key the store writes, built in one place from the configured prefix `P`.
//! Braces are literal: they are Redis Cluster hash tags, so every key of one batch (and a
//! session with its request counter) hashes to one slot and one script can touch them all.
//! No script touches keys of two owners: work that spans a batch and a session, or a
//! session and a client address, is done in steps, each on one slot (`caps.rs`).
//! - `P session:{id}` — session JSON, `PX` = TTL, slid by `GETEX`.
//! - `P session:{id}:rate` — the session's fixed-window request counter (`authorize.lua`).
//! - `P batch:{id}` — hash: `meta` (the batch JSON as created), `state`, `total`, `done`,
//!   `failed`, `exp` (expiry in unix ms).
//! - `P batch:{id}:photos` — hash photo id → queued record JSON.
//! - `P batch:{id}:order` — list of photo ids in insertion order (pagination).
//! - `P batch:{id}:outcomes` — hash photo id → outcome JSON; `HSETNX` is the exactly-once gate.
//! - `P batch:{id}:pending` — hash photo id → pending upload JSON.
//! - `P batch:{id}:pending_exp` — sorted set photo id → the pending upload's expiry (unix
//!   ms): what counts live pending uploads against the photo limit.
//! - `P batch:{id}:effects` — hash effect → `1`.
//! - `P batch:{id}:runs` — hash photo id → `crashed:holder:until`, the runs of its resize that
//!   ended with their worker dying and the run holding it now (`run_hold.lua`).
//! - `P rate:key` — fixed-window counter (`rate_limit.lua`).
//! - `P batches` — sorted set of every batch id by expiry (unix ms), for the reconciler.
//! - `P batches:unsettled` — the same for batches not yet settled (completed with their
//!   effects done, or deleted): what the reconciler checks each pass;
//!   `P batches:unsettled:seeded` marks it filled from `P batches` (once a week at most).
//! - `P lease:name` — the holder of a lease (one reconciler at a time).
//! - `P addr:address:sessions` — sorted set session id → creation (unix ms): the sessions
//!   one client address created within one session TTL.
//! - `P owner:session-id:batches` — sorted set batch id → expiry (unix ms): the batches a
//!   session created that may still be open.

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
    pub pending_exp: String,
    pub effects: String,
    pub runs: String,
}

impl BatchKeys {
    /// Every key of the batch, to delete them together.
    pub fn all(&self) -> [&str; 8] {
        [
            &self.batch,
            &self.photos,
            &self.order,
            &self.outcomes,
            &self.pending,
            &self.effects,
            &self.runs,
            &self.pending_exp,
        ]
    }
}

impl KeySpace {
    /// A prefix holding a brace would change which part of a key Redis Cluster hashes, so
    /// it is refused.
    pub fn new(prefix: &str) -> Result<Self, String> {
        if prefix.contains(['{', '}']) {
            return Err(format!(
                "redis.key_prefix {prefix:?} may not contain braces (Redis Cluster hash tags)"
            ));
        }
        Ok(KeySpace {
            prefix: prefix.to_owned(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The batch hash alone, for calls that touch nothing else.
    pub fn batch_hash(&self, id: Uuid) -> String {
        format!("{}batch:{{{id}}}", self.prefix)
    }

    pub fn batch(&self, id: Uuid) -> BatchKeys {
        let batch = self.batch_hash(id);
        BatchKeys {
            photos: format!("{batch}:photos"),
            order: format!("{batch}:order"),
            outcomes: format!("{batch}:outcomes"),
            pending: format!("{batch}:pending"),
            pending_exp: format!("{batch}:pending_exp"),
            effects: format!("{batch}:effects"),
            runs: format!("{batch}:runs"),
            batch,
        }
    }

    pub fn session(&self, id: &str) -> String {
        format!("{}session:{{{id}}}", self.prefix)
    }

    /// The session's own request counter, in its session's slot.
    pub fn session_rate(&self, id: &str) -> String {
        format!("{}:rate", self.session(id))
    }

    pub fn batch_index(&self) -> String {
        format!("{}batches", self.prefix)
    }

    /// The batches of the index not yet settled (`Upkeep::unsettled_batches`).
    pub fn unsettled_index(&self) -> String {
        format!("{}batches:unsettled", self.prefix)
    }

    /// Present while the unsettled index holds every batch indexed before it existed.
    pub fn unsettled_seeded(&self) -> String {
        format!("{}batches:unsettled:seeded", self.prefix)
    }

    /// The consumed mark (`Upkeep::advance_consumed_mark`): one key per deployment.
    pub fn consumed_mark(&self) -> String {
        format!("{}consumed", self.prefix)
    }

    pub fn lease(&self, name: &str) -> String {
        format!("{}lease:{name}", self.prefix)
    }

    pub fn rate(&self, key: &str) -> String {
        format!("{}rate:{key}", self.prefix)
    }

    pub fn address_sessions(&self, address: &str) -> String {
        format!("{}addr:{address}:sessions", self.prefix)
    }

    pub fn owner_batches(&self, owner: &str) -> String {
        format!("{}owner:{owner}:batches", self.prefix)
    }

    /// The bytes a session is charged, in its session's slot.
    pub fn session_stored(&self, id: &str) -> String {
        format!("{}:stored", self.session(id))
    }

    /// The bytes a client address is charged.
    pub fn address_stored(&self, address: &str) -> String {
        format!("{}addr:{address}:stored", self.prefix)
    }

    /// What was charged under a batch, in its slot but not among [`BatchKeys::all`]: it
    /// outlives the batch's delete until the sweep gives it back.
    pub fn batch_stored(&self, id: Uuid) -> String {
        format!("{}:stored", self.batch_hash(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_stored_names() {
        let id = Uuid::nil();
        let keys = KeySpace::new("p:").unwrap();
        let b = keys.batch(id);
        let base = format!("p:batch:{{{id}}}");
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
                &format!("{base}:runs"),
                &format!("{base}:pending_exp"),
            ]
        );
        assert_eq!(keys.session("s"), "p:session:{s}");
        assert_eq!(keys.session_rate("s"), "p:session:{s}:rate");
        assert_eq!(keys.rate("r"), "p:rate:r");
    }

    /// What Redis Cluster hashes: the text inside the first `{...}` (when not empty).
    fn hash_tag(key: &str) -> &str {
        key.split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(tag, _)| tag)
            .filter(|tag| !tag.is_empty())
            .unwrap_or(key)
    }

    #[test]
    fn each_owner_keys_share_one_hash_tag() {
        let id = Uuid::new_v4();
        let keys = KeySpace::new("tirage:").unwrap();
        let tag = id.to_string();
        for key in keys.batch(id).all() {
            assert_eq!(hash_tag(key), tag, "{key}");
        }
        assert_eq!(hash_tag(&keys.session("abc")), "abc");
        assert_eq!(hash_tag(&keys.session_rate("abc")), "abc");
        assert_eq!(hash_tag(&keys.session_stored("abc")), "abc");
        assert_eq!(hash_tag(&keys.batch_stored(id)), tag);
    }

    #[test]
    fn a_prefix_with_a_hash_tag_is_refused() {
        assert!(KeySpace::new("tirage:").is_ok());
        assert!(KeySpace::new("t{x}:").is_err());
        assert!(KeySpace::new("t}").is_err());
    }
}
