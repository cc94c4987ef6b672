//! What the v1 HTTP API sends and accepts as JSON, shared by the API (which serialises the
//! answers) and the CLI client (which reads them), so the contract is written once. Stored
//! types ([`crate::model`]) hold more than a client may see (the owner, the callback URL),
//! so they are mapped here.
//!
//! Field names, optional fields and skip rules are the contract: renaming one breaks every
//! client. With the `openapi` feature each type also describes itself for the API document.

mod batches;
mod error;
mod health;
mod integer;
mod photos;
mod session;
mod uploads;

pub use batches::{BatchView, CreateBatchRequest};
pub use error::{ErrorBody, ErrorDetail};
pub use health::Readiness;
pub use photos::{OutputView, PageQuery, PhotoList, PhotoView};
pub use session::SessionCreated;
#[cfg(feature = "openapi")]
pub use uploads::PhotoUploadForm;
pub use uploads::{
    AcceptedPhoto, PhotosAccepted, UploadFile, UploadTicket, UploadsCreated, UploadsRequest,
};

#[cfg(test)]
mod tests;
