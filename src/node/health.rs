//! The health of one probe target: its up/down state, smoothed RTT, reported weight and
//! slow-start time (atomics, read lock-free by the answer path), plus details and history
//! behind a mutex for the admin side.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use super::failure::{CheckCounters, CheckTotals, Failure};
use super::memo;
use super::reported::{NO_REPORT, Reported};

/// Health of one probe target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// No result yet (only between a probe's start and its first result).
    Unknown,
    /// Passing: handed out.
    Up,
    /// Failing: not handed out.
    Down,
}

impl Health {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::Unknown,
        }
    }

    /// Lower-case name for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state change, kept in a short history for the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Wall-clock time of the change.
    pub at: SystemTime,
    /// State before (`Unknown` for the first result).
    pub from: Health,
    /// State after.
    pub to: Health,
    /// The result that caused it: `ok` or the failure.
    pub reason: String,
}

/// How many transitions each node remembers.
pub const HISTORY_LEN: usize = 16;

/// Everything about a probe that is not needed to answer queries.
#[derive(Debug, Clone, Default)]
pub struct ProbeDetail {
    /// Result of the last check: `None` when it passed.
    pub last_failure: Option<Failure>,
    /// When the last check finished.
    pub last_check: Option<SystemTime>,
    /// Round-trip time of the last successful check.
    pub last_rtt: Option<Duration>,
    /// Consecutive successes so far.
    pub ok_run: u32,
    /// Consecutive failures so far.
    pub fail_run: u32,
    /// Checks run.
    pub checks: u64,
    /// Checks failed.
    pub failures: u64,
    /// State changes, first result included.
    pub transitions: u64,
    /// A reported weight that could not be read, if the last one could not.
    pub weight_error: Option<String>,
    /// The latest transitions, oldest first.
    pub history: VecDeque<Transition>,
    /// `pool/label` of every node this probe serves, for logs.
    pub users: Vec<String>,
}

/// Runtime state of one probe target, shared (in an `Arc`) by every pool node it checks.
#[derive(Debug)]
pub struct NodeHealth {
    state: AtomicU8,
    reported: AtomicU32,
    /// Smoothed RTT in microseconds; `u32::MAX` until the first success.
    srtt_us: AtomicU32,
    /// Milliseconds since `epoch` at which the node last came back up after being down
    /// (drives slow start); 0 when it has not (it was up from its first result).
    up_since_ms: AtomicU64,
    epoch: Instant,
    detail: Mutex<ProbeDetail>,
    counters: CheckCounters,
}

impl NodeHealth {
    /// A new target with no result yet. `epoch` is the clock base shared with the pools.
    pub fn new(epoch: Instant) -> Self {
        Self {
            state: AtomicU8::new(0),
            reported: AtomicU32::new(NO_REPORT),
            srtt_us: AtomicU32::new(u32::MAX),
            up_since_ms: AtomicU64::new(0),
            epoch,
            detail: Mutex::new(ProbeDetail::default()),
            counters: CheckCounters::default(),
        }
    }

    /// The clock base of this state (shared by every node of one monitor).
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Counts one finished check for metrics: its duration and, if it failed, why.
    pub fn observe_check(&self, duration: Duration, failure: Option<&Failure>) {
        self.counters.observe(duration, failure);
    }

    /// The check counters (duration histogram, failures by reason).
    pub fn check_totals(&self) -> CheckTotals {
        self.counters.totals()
    }

    /// Current health (lock-free).
    #[inline]
    pub fn health(&self) -> Health {
        Health::from_u8(self.state.load(Relaxed))
    }

    /// The weight the node reported, if any (lock-free).
    #[inline]
    pub fn reported(&self) -> Option<Reported> {
        Reported::decode(self.reported.load(Relaxed))
    }

    /// Smoothed check RTT in microseconds, `u32::MAX` when unknown (lock-free).
    #[inline]
    pub fn srtt_us(&self) -> u32 {
        self.srtt_us.load(Relaxed)
    }

    /// Smoothed check RTT, if any success was seen.
    pub fn srtt(&self) -> Option<Duration> {
        match self.srtt_us() {
            u32::MAX => None,
            us => Some(Duration::from_micros(us as u64)),
        }
    }

    /// When the node last came back up (`None` if it has been up since its first result
    /// or is down). Lock-free.
    #[inline]
    pub fn up_since(&self) -> Option<Instant> {
        match self.up_since_ms.load(Relaxed) {
            0 => None,
            ms => Some(self.epoch + Duration::from_millis(ms)),
        }
    }

    /// A copy of the details (takes the detail lock briefly; not for the answer path).
    pub fn detail(&self) -> ProbeDetail {
        self.detail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_users(&self, users: Vec<String>) {
        self.detail.lock().unwrap_or_else(|e| e.into_inner()).users = users;
    }

    pub(crate) fn with_detail<R>(&self, f: impl FnOnce(&mut ProbeDetail) -> R) -> R {
        f(&mut self.detail.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn set_health(&self, h: Health, came_back_at: Option<Instant>) {
        if let Some(at) = came_back_at {
            // +1 keeps 0 free to mean "none" even at the epoch itself.
            let ms = at.saturating_duration_since(self.epoch).as_millis() as u64 + 1;
            self.up_since_ms.store(ms, Relaxed);
        } else if h != Health::Up {
            self.up_since_ms.store(0, Relaxed);
        }
        let new = match h {
            Health::Unknown => 0,
            Health::Up => 1,
            Health::Down => 2,
        };
        // A check that confirms the known state changes nothing selection reads.
        if self.state.swap(new, Relaxed) != new || came_back_at.is_some() {
            memo::state_changed();
        }
    }

    pub(crate) fn set_reported(&self, r: Option<Reported>) {
        let new = Reported::encode(r);
        if self.reported.swap(new, Relaxed) != new {
            memo::state_changed();
        }
    }

    /// Folds one RTT sample into the smoothed RTT (EWMA, gain 1/4: reacts within a few
    /// checks, ignores a single slow one).
    pub(crate) fn add_rtt(&self, rtt: Duration) {
        let sample = rtt.as_micros().min(u32::MAX as u128 - 1) as u32;
        let old = self.srtt_us.load(Relaxed);
        let new = if old == u32::MAX {
            sample
        } else {
            ((old as u64 * 3 + sample as u64) / 4) as u32
        };
        self.srtt_us.store(new, Relaxed);
    }

    /// Sets the smoothed RTT outright (cluster mode: the median of the observers').
    pub(crate) fn set_srtt(&self, rtt: Duration) {
        let us = rtt.as_micros().min(u32::MAX as u128 - 1) as u32;
        self.srtt_us.store(us, Relaxed);
    }

    /// Test hook (unit tests and the `test-hooks` feature of the fuzz targets only): sets
    /// the state directly, as if probes had decided it.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn force(&self, h: Health, came_back_at: Option<Instant>, srtt: Option<Duration>) {
        self.set_health(h, came_back_at);
        if let Some(r) = srtt {
            self.srtt_us.store(r.as_micros() as u32, Relaxed);
        }
    }

    /// Test hook (unit tests and the `test-hooks` feature only): sets the reported weight.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn force_reported(&self, r: Option<Reported>) {
        self.set_reported(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::failure::CHECK_BUCKETS;

    #[test]
    fn rtt_is_smoothed() {
        let n = NodeHealth::new(Instant::now());
        assert_eq!(n.srtt(), None);
        n.add_rtt(Duration::from_millis(100));
        assert_eq!(n.srtt(), Some(Duration::from_millis(100)));
        n.add_rtt(Duration::from_millis(20));
        assert_eq!(n.srtt(), Some(Duration::from_millis(80)));
    }

    #[test]
    fn up_since_is_kept_only_while_up() {
        let epoch = Instant::now();
        let n = NodeHealth::new(epoch);
        n.set_health(Health::Up, None);
        assert_eq!(n.up_since(), None);
        let at = epoch + Duration::from_secs(5);
        n.set_health(Health::Up, Some(at));
        let got = n.up_since().unwrap();
        assert!(got >= at && got <= at + Duration::from_millis(2));
        n.set_health(Health::Down, None);
        assert_eq!(n.up_since(), None);
    }

    #[test]
    fn check_counters_by_bucket_and_reason() {
        let n = NodeHealth::new(Instant::now());
        n.observe_check(Duration::from_micros(300), None);
        n.observe_check(Duration::from_millis(300), Some(&Failure::Timeout));
        n.observe_check(Duration::from_secs(3), Some(&Failure::Refused));
        let t = n.check_totals();
        assert_eq!(t.buckets[0], 1);
        assert_eq!(t.buckets[9], 1, "300 ms falls in the (250, 500] ms bucket");
        assert_eq!(t.buckets[CHECK_BUCKETS.len()], 1);
        assert_eq!((t.failures[0], t.failures[1]), (1, 1));
        assert!((t.sum - 3.3003).abs() < 1e-6);
    }
}
