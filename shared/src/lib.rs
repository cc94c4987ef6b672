//! What Tirage's processes agree on: the wire formats they exchange, the object keys they
//! write, and the small traits ("ports") behind which every external dependency sits.
//!
//! Production adapters (S3, AMQP, Redis) and embedded ones (file system, in-process,
//! in-memory) implement the same traits and pass the same contract tests, so the API and
//! the workers never know which one they run on.

pub mod adapters;
pub mod backoff;
pub mod cidr;
pub mod codes;
pub mod completion;
pub mod keys;
pub mod model;
pub mod ports;
#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

pub use model::*;
