//! The simulator's one source of randomness: SplitMix64, with an independent stream per label
//! (`workload`, `faults/n0/queue`, `entropy/n1`, …) derived from the seed, so that a change
//! in how often one component draws does not shift what every other component draws. Our
//! own generator, not `rand`'s `StdRng`: a seed must name the same run in every version.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tirage_ports::Entropy;
use uuid::Uuid;

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a over `bytes`, continuing from `hash` (start with [`FNV_OFFSET`]).
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// One SplitMix64 stream. Its state is an atomic counter (SplitMix64 only adds a constant),
/// so a stream shared by tasks needs no lock; on the simulator's one thread the order of
/// draws is the order of the tasks, which the seed fixes.
#[derive(Debug)]
pub struct Stream {
    state: AtomicU64,
}

impl Stream {
    /// The stream named `label` of run `seed`.
    pub fn derive(seed: u64, label: &str) -> Stream {
        let named = fnv1a(FNV_OFFSET, label.as_bytes());
        Stream {
            state: AtomicU64::new(mix(seed ^ mix(named))),
        }
    }

    pub fn next_u64(&self) -> u64 {
        let state = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        mix(state)
    }

    /// Uniform in [0, 1).
    pub fn fraction(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo + 1;
        lo + self.next_u64() % span
    }

    pub fn usize_in(&self, lo: usize, hi: usize) -> usize {
        usize::try_from(self.range(lo as u64, hi as u64)).unwrap_or(lo)
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        self.fraction() < p
    }

    pub fn millis(&self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }

    pub fn uuid(&self) -> Uuid {
        let (a, b) = (self.next_u64(), self.next_u64());
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// A node's randomness (lease holder ids, retry jitter), from its own stream.
#[derive(Debug)]
pub struct SimEntropy {
    stream: Stream,
}

impl SimEntropy {
    pub fn new(seed: u64, label: &str) -> SimEntropy {
        SimEntropy {
            stream: Stream::derive(seed, label),
        }
    }
}

impl Entropy for SimEntropy {
    fn uuid(&self) -> Uuid {
        self.stream.uuid()
    }

    fn fraction(&self) -> f64 {
        self.stream.fraction()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_labelled() {
        let a = Stream::derive(7, "workload");
        let b = Stream::derive(7, "workload");
        let c = Stream::derive(7, "faults/n0/queue");
        let (xa, xb, xc) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        for _ in 0..1000 {
            let f = a.fraction();
            assert!((0.0..1.0).contains(&f));
            let r = a.range(3, 5);
            assert!((3..=5).contains(&r));
        }
    }
}
