//! Why a check failed, and the per-probe check counters (duration histogram, failures by
//! reason) that metrics export.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Why one check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No complete answer within the check's timeout.
    Timeout,
    /// The connection was refused (nothing listening).
    Refused,
    /// Other connection error (unreachable, reset...).
    Connect(String),
    /// TLS handshake or certificate error.
    Tls(String),
    /// The status code was not in `expect`.
    Status(u16),
    /// The expected substring was not in the first `max_body` bytes.
    BodyMismatch,
    /// Other HTTP protocol error.
    Http(String),
    /// The check could not even be set up (bad TLS setup on this host...).
    Setup(String),
}

/// Labels of the failure reasons counted per probe (see [`Failure::slot`]).
pub const FAILURE_REASONS: [&str; 8] = [
    "timeout", "refused", "connect", "tls", "status", "body", "http", "setup",
];

impl Failure {
    /// Index of this failure's reason in [`FAILURE_REASONS`].
    pub fn slot(&self) -> usize {
        match self {
            Failure::Timeout => 0,
            Failure::Refused => 1,
            Failure::Connect(_) => 2,
            Failure::Tls(_) => 3,
            Failure::Status(_) => 4,
            Failure::BodyMismatch => 5,
            Failure::Http(_) => 6,
            Failure::Setup(_) => 7,
        }
    }
}

/// Upper bounds (seconds) of the check-duration histogram buckets: a check on a LAN takes
/// a millisecond or less, a timeout is a few hundred milliseconds.
pub const CHECK_BUCKETS: [f64; 11] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Check counters for metrics: duration histogram and failures by reason.
#[derive(Debug, Default)]
pub(crate) struct CheckCounters {
    /// Non-cumulative bucket counts; the last one is above every bound.
    buckets: [AtomicU64; CHECK_BUCKETS.len() + 1],
    sum_us: AtomicU64,
    failures: [AtomicU64; FAILURE_REASONS.len()],
}

impl CheckCounters {
    /// Counts one finished check for metrics: its duration and, if it failed, why.
    pub(crate) fn observe(&self, duration: Duration, failure: Option<&Failure>) {
        let c = self;
        let secs = duration.as_secs_f64();
        let bucket = CHECK_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(CHECK_BUCKETS.len());
        c.buckets[bucket].fetch_add(1, Relaxed);
        c.sum_us
            .fetch_add(duration.as_micros().min(u64::MAX as u128) as u64, Relaxed);
        if let Some(f) = failure {
            c.failures[f.slot()].fetch_add(1, Relaxed);
        }
    }

    /// The check counters (duration histogram, failures by reason).
    pub(crate) fn totals(&self) -> CheckTotals {
        let c = self;
        CheckTotals {
            buckets: std::array::from_fn(|i| c.buckets[i].load(Relaxed)),
            sum: c.sum_us.load(Relaxed) as f64 / 1e6,
            failures: std::array::from_fn(|i| c.failures[i].load(Relaxed)),
        }
    }
}

/// Summed check counters of one probe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckTotals {
    /// Duration histogram, non-cumulative, the last bucket above every bound of
    /// [`CHECK_BUCKETS`].
    pub buckets: [u64; CHECK_BUCKETS.len() + 1],
    /// Sum of check durations, seconds.
    pub sum: f64,
    /// Failed checks by reason, indexed like [`FAILURE_REASONS`].
    pub failures: [u64; FAILURE_REASONS.len()],
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => f.write_str("timeout"),
            Failure::Refused => f.write_str("connection refused"),
            Failure::Connect(e) => write!(f, "connect error: {e}"),
            Failure::Tls(e) => write!(f, "TLS error: {e}"),
            Failure::Status(s) => write!(f, "status {s}"),
            Failure::BodyMismatch => f.write_str("body mismatch"),
            Failure::Http(e) => write!(f, "HTTP error: {e}"),
            Failure::Setup(e) => write!(f, "check setup failed: {e}"),
        }
    }
}
