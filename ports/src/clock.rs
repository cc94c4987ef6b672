//! What time it is, as every process reads it. A dependency like [`crate::Entropy`], so
//! that a run can be driven in virtual time (the simulator, `tirage-sim`, moves it with
//! tokio's paused clock; the test kit's `ManualClock` moves it by hand); the processes use
//! [`SystemClock`].

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
