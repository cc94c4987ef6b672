//! ZIP archives written as a stream, for `GET /v1/batches/{id}/archive`: entries STORED (JPEG,
//! WebP and PNG do not compress further), each one's CRC-32 computed while its bytes go out
//! and sent after them in a data descriptor (flag bit 3), ZIP64 records wherever a size, an
//! offset or the entry count passes the 32- or 16-bit fields. Every size is known before
//! the first byte, so the archive's length is too ([`Layout::total_len`]).
//!
//! - [`names`]: safe, unique entry names from client file names;
//! - [`layout`]: the offsets and the length, planned up front;
//! - [`records`]: the bytes of each ZIP record;
//! - [`stream`]: the archive as a stream, the entries read from their sources.
//!
//! Hand-rolled rather than a crate: STORED entries with descriptors and ZIP64 are a few
//! fixed records, and the length announced up front must be computed by the same code that
//! writes the records — the crates (`zip`, `async_zip`) write to a sink and tell the length
//! only afterwards. The tests read what this writes with Python's `zipfile` and Info-ZIP's
//! `unzip`.

pub mod layout;
pub mod names;
pub mod records;
pub mod stream;

#[cfg(test)]
mod tests;

pub use layout::{Layout, LayoutError, PlannedEntry};
pub use names::{UniqueStems, entry_name, safe_stem};
pub use stream::{WriteError, write};
