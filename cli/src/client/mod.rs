//! The one client of the v1 HTTP API. It reads and writes the server's own wire types
//! (`tirage_core::wire`), so the contract is declared once.
//!
//! - [`transport`]: the HTTP client, the session token, and sending with retries;
//! - [`retry`]: when to try again and how long to wait;
//! - [`api`]: one method per endpoint;
//! - [`sse`]: the batch event stream;
//! - [`error`]: what a failed request turns into.

pub mod api;
pub mod error;
pub mod retry;
pub mod sse;
pub mod transport;

pub use api::UploadPart;
pub use error::ClientError;
pub use retry::RetryPolicy;
pub use sse::{EventStream, SseEvent, SseParser};
pub use transport::Client;
