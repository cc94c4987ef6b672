//! Where a process's randomness comes from: fresh ids and retry jitter. A dependency like
//! the clock, so that a run can be driven from one seed (the simulator, `tirage-sim`); the
//! processes use [`OsEntropy`].

use uuid::Uuid;

pub trait Entropy: Send + Sync + 'static {
    /// A fresh id, unique with overwhelming probability (a reconciler lease's holder name).
    fn uuid(&self) -> Uuid;
    /// A fraction in [0, 1), for jitter ([`tirage_core::backoff::Backoff::delay_with`]).
    fn fraction(&self) -> f64;
}

/// The operating system's random source.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn uuid(&self) -> Uuid {
        Uuid::new_v4()
    }

    fn fraction(&self) -> f64 {
        tirage_core::backoff::random_fraction()
    }
}
