//! What every Tirage process does the same way, whichever binary it is (`tirage-api`,
//! `tirage-worker`, `tirage standalone`): load its configuration ([`config`]), install its
//! logs ([`telemetry`]), wait for the stop signal ([`shutdown`]) and wire its ports
//! ([`ports`]: Redis, RabbitMQ and S3 in production, the embedded adapters otherwise).
//!
//! The binaries only add what is theirs: their own settings sections and their own server.

pub mod config;
pub mod ports;
pub mod readiness;
pub mod shutdown;
pub mod telemetry;

#[cfg(all(feature = "redis", feature = "amqp", feature = "s3"))]
pub use ports::{ConnectError, ServiceSettings, connect};
pub use ports::{PortNames, Ports};
pub use readiness::readiness;
