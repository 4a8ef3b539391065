//! Caps on health checking, so that a valid configuration cannot exhaust the process.
//!
//! Every distinct (target, check) pair is one probe: a task that opens a connection every
//! interval. Thousands of pools with distinct targets would otherwise open thousands of
//! sockets at once, reach the descriptor limit and take the whole server down, so the
//! number of probes is capped when zones are loaded (`roundel check` and every reload
//! reject a zone set over the cap, naming the pool that crosses it), and the number of
//! checks running at the same moment is capped by the health monitor.
//!
//! Both can be changed in the server configuration (`[health]`, see `docs/operations.md`).

/// Default most probes (distinct check target and check) over all zones. Checks of kind
/// `none` do not probe and do not count.
pub const MAX_PROBES: usize = 4_096;
/// Default most health checks in flight at once (each holds one socket while it runs).
/// With the default 300 ms timeout this still runs over 850 checks a second when every
/// target hangs, enough for [`MAX_PROBES`] at a 5 s interval; healthy targets answer in
/// milliseconds and go much faster.
pub const MAX_PROBES_IN_FLIGHT: usize = 256;
/// Default most plain-HTTP check connections kept open between checks
/// (`reuse_connection = true`): no bound beyond one per probe. The server lowers it to
/// what its descriptor budget leaves ([`crate::limits::Budget::kept_connections`]).
pub const MAX_KEPT_CONNECTIONS: usize = usize::MAX;

/// The caps in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeLimits {
    /// Most probes.
    pub max_probes: usize,
    /// Most checks in flight.
    pub max_in_flight: usize,
    /// Most check connections kept between checks.
    pub max_kept: usize,
}

impl Default for ProbeLimits {
    fn default() -> Self {
        Self {
            max_probes: MAX_PROBES,
            max_in_flight: MAX_PROBES_IN_FLIGHT,
            max_kept: MAX_KEPT_CONNECTIONS,
        }
    }
}
