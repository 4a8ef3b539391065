//! The zone model: zone files parsed and validated into immutable data.

pub mod error;
