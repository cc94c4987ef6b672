//! The API suite on the embedded adapters (memory state, in-process queue, file-system
//! objects): fast, and needs no service.

// Tests may unwrap (the workspace denies it in library code only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::embedded::Embedded;

api_suite!(Embedded);
