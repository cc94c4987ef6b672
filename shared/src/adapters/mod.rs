//! Implementations of the ports. The embedded ones (memory, in-process, file system) are
//! always compiled; the production ones sit behind the `redis`, `amqp` and `s3` features so
//! crates that only need the types (the engine) do not build their clients.

pub mod clock;
pub mod fs;
pub mod inprocess;
pub mod memory;
mod records;

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "s3")]
pub mod s3;

pub use clock::{Clock, SystemClock};
pub use fs::{FsObjectStore, FsSettings, PresignError};
pub use inprocess::InProcessQueue;
pub use memory::MemoryStateStore;
pub use records::{DeadLetter, MAX_PAGE};
