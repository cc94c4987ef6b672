//! Exponential backoff with jitter: the one rule every retry in Tirage waits by (the
//! worker's job retries and reconnects, the CLI client's request retries).

use std::time::Duration;

/// Doubling delays from `base`, capped at `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap }
    }

    /// The wait after failed attempt `attempt` (1-based): `base * 2^(attempt-1)`, capped,
    /// less up to 20 % of jitter so that callers failing together do not all come back at
    /// the same instant.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, random_fraction())
    }

    /// [`Backoff::delay`] with the jitter drawn by the caller: `fraction` in [0, 1) takes
    /// that share of the 20 % off (a process that draws its randomness from one source
    /// passes it here).
    pub fn delay_with(&self, attempt: u32, fraction: f64) -> Duration {
        let raw = self.ceiling(attempt);
        raw.saturating_sub(raw.mul_f64(fraction.clamp(0.0, 1.0) * 0.2))
    }

    /// The delay before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << exp).min(self.cap)
    }
}

/// A fraction in [0, 1) from a v4 UUID (the OS random source; no extra dependency).
pub fn random_fraction() -> f64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    f64::from(n) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_then_cap_with_at_most_a_fifth_of_jitter() {
        let policy = Backoff::new(Duration::from_millis(100), Duration::from_millis(1_000));
        for _ in 0..50 {
            let d1 = policy.delay(1);
            let d3 = policy.delay(3);
            let d9 = policy.delay(9);
            assert!(
                d1 <= policy.base && d1 >= policy.base.mul_f64(0.8),
                "{d1:?}"
            );
            let four = policy.base * 4;
            assert!(d3 <= four && d3 >= four.mul_f64(0.8), "{d3:?}");
            assert!(d9 <= policy.cap && d9 >= policy.cap.mul_f64(0.8), "{d9:?}");
        }
        assert!(policy.delay(u32::MAX) <= policy.cap);
        assert_eq!(policy.delay_with(3, 0.0), policy.ceiling(3));
        assert_eq!(policy.delay_with(3, 1.0), policy.ceiling(3).mul_f64(0.8));
        assert_eq!(policy.ceiling(0), policy.base);
    }
}
