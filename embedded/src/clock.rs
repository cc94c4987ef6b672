//! Time as the embedded adapters see it, so tests can move it instead of sleeping (the
//! test kit's `ManualClock`, the simulator's virtual clock). The trait is the ports' one.

pub use tirage_ports::{Clock, SystemClock};
