//! Process-wide counters of what the budgets refused or cut short, for `/metrics`.
//!
//! Plain relaxed atomics, bumped only on the rare paths (a refused or evicted connection,
//! a timeout, an accept error), never per query.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// DNS-over-TCP connections open now.
pub static TCP_OPEN: AtomicU64 = AtomicU64::new(0);
/// DNS-over-TCP connections refused: the global cap was reached and none was idle.
pub static TCP_REFUSED_GLOBAL: Counter = Counter::new();
/// DNS-over-TCP connections refused: the client address had its share.
pub static TCP_REFUSED_PER_ADDRESS: Counter = Counter::new();
/// Idle DNS-over-TCP connections closed to make room for a new one.
pub static TCP_EVICTED: Counter = Counter::new();
/// DNS-over-TCP connections closed after the idle timeout.
pub static TCP_IDLE_TIMEOUTS: Counter = Counter::new();
/// DNS-over-TCP connections closed after the I/O timeout.
pub static TCP_IO_TIMEOUTS: Counter = Counter::new();
/// DNS-over-TCP connections closed after their query cap.
pub static TCP_QUERY_CAP: Counter = Counter::new();
/// accept() errors on the DNS TCP listeners.
pub static TCP_ACCEPT_ERRORS: Counter = Counter::new();
/// Admin connections refused at the cap: every connection was being answered.
pub static ADMIN_REFUSED: Counter = Counter::new();
/// Idle admin connections closed at the cap to make room for a new one.
pub static ADMIN_EVICTED: Counter = Counter::new();
/// accept() errors on the admin listener.
pub static ADMIN_ACCEPT_ERRORS: Counter = Counter::new();
/// Health checks that failed for a local reason (no descriptor, no memory): errors of
/// the checker, not evidence against the backend.
pub static PROBE_LOCAL_ERRORS: Counter = Counter::new();
