//! The embedded adapters: the ports implemented inside one process, with nothing to run
//! beside it — the state store in memory, the job queue in process, objects on the file
//! system. `tirage standalone` and fast tests use them; they pass the same contract suites
//! as the production adapters (`tirage-redis`, `tirage-amqp`, `tirage-s3`), so the API and
//! the workers never know which one they run on.

pub mod clock;
pub mod fs;
pub mod inprocess;
pub mod memory;

pub use clock::{Clock, SystemClock};
pub use fs::{FsObjectStore, FsSettings, PresignError};
pub use inprocess::InProcessQueue;
pub use memory::MemoryStateStore;
