//! The adapters behind Tirage's ports — production ones (S3, AMQP, Redis) and embedded ones
//! (file system, in-process, in-memory), which implement the same traits and pass the same
//! contract tests, so the API and the workers never know which one they run on — and the
//! runtime every binary shares (configuration, logs, the stop signal, the ports' wiring).

pub mod adapters;
#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(feature = "testing")]
pub mod testing;
