//! How many callbacks this worker sends to one host at once. A receiver that never answers
//! holds at most `callback_per_host` effect slots (each for `callback_timeout_ms`); its other
//! callbacks wait in the delay queue, so every other host's callbacks go on.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub(crate) struct HostSlots {
    per_host: usize,
    taken: Mutex<HashMap<String, usize>>,
}

/// One callback in flight to `host`; dropping it frees the slot.
pub(crate) struct HostSlot<'a> {
    slots: &'a HostSlots,
    host: String,
}

impl HostSlots {
    pub fn new(per_host: usize) -> Self {
        HostSlots {
            per_host: per_host.max(1),
            taken: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        // Nothing inside the lock panics, so a poisoned lock still holds consistent counts.
        self.taken.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for `host`, or `None` while `per_host` callbacks to it are in flight.
    pub fn try_take(&self, host: &str) -> Option<HostSlot<'_>> {
        let mut taken = self.lock();
        let count = taken.entry(host.to_owned()).or_insert(0);
        if *count >= self.per_host {
            return None;
        }
        *count += 1;
        Some(HostSlot {
            slots: self,
            host: host.to_owned(),
        })
    }
}

impl Drop for HostSlot<'_> {
    fn drop(&mut self) {
        let mut taken = self.slots.lock();
        if let Some(count) = taken.get_mut(&self.host) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                taken.remove(&self.host);
            }
        }
    }
}

/// The host a callback URL calls, as the slots count it: scheme, lowercased host and port
/// (a URL that does not parse counts as itself; the attempt refuses it anyway).
pub(crate) fn host_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or_default().to_ascii_lowercase(),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_gets_at_most_its_share_and_a_dropped_slot_frees_one() {
        let slots = HostSlots::new(2);
        let a = slots.try_take("http://a:80").unwrap();
        let _b = slots.try_take("http://a:80").unwrap();
        assert!(
            slots.try_take("http://a:80").is_none(),
            "third to a refused"
        );
        assert!(
            slots.try_take("http://c:80").is_some(),
            "another host unaffected"
        );
        drop(a);
        assert!(slots.try_take("http://a:80").is_some(), "freed by the drop");
    }

    #[test]
    fn hosts_are_counted_by_scheme_host_and_port() {
        assert_eq!(host_of("HTTP://Example.COM/x?y"), "http://example.com:80");
        assert_eq!(
            host_of("https://example.com:8443/"),
            "https://example.com:8443"
        );
        assert_ne!(host_of("http://a/"), host_of("https://a/"));
    }
}
