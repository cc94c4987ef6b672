//! Tirage's deterministic simulation. This library is empty: the simulator is the crate's
//! test target `sim` (`sim/tests/sim/main.rs`, where its module documentation explains what
//! it runs, what it checks and how to replay a seed):
//!
//! ```text
//! cargo test -p tirage-sim --test sim -- --nocapture
//! TIRAGE_SIM_SEED=<seed> cargo test -p tirage-sim --test sim -- --exact replay --nocapture
//! ```
