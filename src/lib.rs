//! Roundel: a health-aware authoritative DNS server.
