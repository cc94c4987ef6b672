//! What Tirage's processes agree on, with no I/O and no async runtime: the stored records
//! (`model`), the codes they exchange (`codes`), the object keys they write (`keys`), the
//! HTTP contract's JSON types (`wire`), the one retry backoff and the one IP network type
//! of the settings. The engine depends on this crate alone.

pub mod backoff;
pub mod cidr;
pub mod codes;
pub mod keys;
pub mod model;
pub mod wire;

pub use model::*;
