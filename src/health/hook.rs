//! [`ProbeHook`]: how a coordinator above the health monitor (cluster mode) takes part in
//! probing without the monitor knowing about it.
//!
//! Without a hook every probe checks its target on every tick and its result is the
//! served state. With one, the hook decides per tick whether this instance runs the
//! check (its share of the probes), receives every local result, and says whether the
//! result is also the served state (it is not when the state is derived from several
//! instances' observations).

use std::net::IpAddr;
use std::time::Duration;

use super::monitor::ProbeKey;
use crate::node::{Health, Reported};

/// One local result, after this instance's rise/fall hysteresis.
#[derive(Debug, Clone)]
pub struct LocalObservation {
    /// The state the local hysteresis gives.
    pub health: Health,
    /// `ok`, or why the check failed.
    pub reason: String,
    /// Duration of this check.
    pub rtt: Duration,
    /// Smoothed RTT of the local checks that passed.
    pub srtt: Option<Duration>,
    /// Weight the node reported in this check.
    pub reported: Option<Reported>,
    /// Whether the local state changed with this check.
    pub changed: bool,
}

/// A coordinator of the probes (implemented by cluster mode).
pub trait ProbeHook: Send + Sync {
    /// Source address for the checks, if one is set.
    fn source(&self) -> Option<IpAddr>;
    /// Whether this instance runs the check of `key` now. Asked before every check
    /// after the first (the first result of a new probe always decides its initial
    /// served state, so a pool is never answered from an unknown state).
    fn should_probe(&self, key: &ProbeKey) -> bool;
    /// Receives a local result; returns whether it also sets the served state.
    fn observed(&self, key: &ProbeKey, obs: &LocalObservation) -> bool;
}
