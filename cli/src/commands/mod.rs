pub mod resize;
pub mod standalone;
pub mod upload;
