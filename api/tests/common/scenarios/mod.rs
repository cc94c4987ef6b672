//! Every endpoint and every error status of the v1 contract, written once for all backends,
//! one file per resource. `api_suite!` (in `common/mod.rs`) runs each of them.

pub mod archive;
pub mod batches;
pub mod caps;
pub mod dependencies;
pub mod events;
pub mod operations;
pub mod photos;
pub mod quotas;
pub mod sessions;
pub mod streams;
pub mod uploads_multipart;
pub mod uploads_presigned;
