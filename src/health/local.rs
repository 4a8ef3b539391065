//! Checks that fail for a reason on this host: the process is out of descriptors (EMFILE,
//! ENFILE), the host out of memory or buffers (ENOMEM, ENOBUFS), or no local address or
//! port is free (EADDRNOTAVAIL).
//!
//! Such a failure says nothing about the backend, so it must not count against it: under a
//! descriptor flood every probe would fail at once and take healthy pools down. The monitor
//! drops the result (the node keeps its state and its rise/fall runs), counts it in
//! `roundel_probe_local_errors_total` and logs at most once per [`LOG_INTERVAL`].

use std::error::Error as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::limits::counters::PROBE_LOCAL_ERRORS;

/// At most one log line per this interval, process-wide.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Whether `e` is a local failure (see the module documentation).
pub fn is_local(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS | libc::EADDRNOTAVAIL)
    )
}

/// The local failure somewhere in `e`'s chain of causes, if there is one.
pub fn local_cause(e: &reqwest::Error) -> Option<String> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = e.source();
    for _ in 0..16 {
        let s = src?;
        // io::Error nests, and its `source()` skips the wrapped error: descend with get_ref.
        let mut io = s.downcast_ref::<std::io::Error>();
        for _ in 0..8 {
            let Some(e) = io else { break };
            if is_local(e) {
                return Some(e.to_string());
            }
            io = e.get_ref().and_then(|i| i.downcast_ref::<std::io::Error>());
        }
        src = s.source();
    }
    None
}

static LAST_LOG_SECS: AtomicU64 = AtomicU64::new(0);
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// Counts one local failure of the check of `addr`:`port` and logs it (rate-limited).
pub fn note(addr: &IpAddr, port: u16, error: &str) {
    PROBE_LOCAL_ERRORS.inc();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_LOG_SECS.load(Relaxed);
    if now.saturating_sub(last) < LOG_INTERVAL.as_secs()
        || LAST_LOG_SECS
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_err()
    {
        SUPPRESSED.fetch_add(1, Relaxed);
        return;
    }
    tracing::warn!(
        target: "roundel::health",
        node = %addr,
        port,
        error,
        suppressed = SUPPRESSED.swap(0, Relaxed),
        "health check failed for a local reason (not counted against the node)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_errors_are_told_apart() {
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOMEM,
            libc::ENOBUFS,
            libc::EADDRNOTAVAIL,
        ] {
            assert!(
                is_local(&std::io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        for errno in [
            libc::ECONNREFUSED,
            libc::ECONNRESET,
            libc::EHOSTUNREACH,
            libc::ETIMEDOUT,
        ] {
            assert!(
                !is_local(&std::io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
    }
}
