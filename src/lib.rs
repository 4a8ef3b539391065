//! Roundel: a health-aware authoritative DNS server.

pub mod health;
pub mod policy;
pub mod pool;
pub mod zone;
