//! What the API does, apart from how HTTP asks for it: the handlers in [`crate::routes`]
//! parse a request, call one of these and shape the answer.

pub mod archive;
pub mod batches;
pub mod follow;
pub mod intake;
pub mod presigned;
pub mod quota;
pub mod renditions;
pub mod sessions;
pub mod slots;
pub mod streamed;
