//! Roundel: a health-aware authoritative DNS server.

pub mod zone;
