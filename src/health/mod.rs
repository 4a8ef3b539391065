//! Health checking.
