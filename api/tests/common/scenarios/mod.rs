//! Every endpoint and every error status of the v1 contract, written once for all backends,
//! one file per resource. `api_suite!` (in `common/mod.rs`) runs each of them.

pub mod batches;
pub mod dependencies;
pub mod events;
pub mod operations;
pub mod photos;
pub mod sessions;
pub mod uploads_multipart;
pub mod uploads_presigned;
