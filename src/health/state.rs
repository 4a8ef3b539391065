//! Per-node runtime state shared between the probes (writers) and the DNS answer path
//! (reader).
//!
//! The answer path reads only atomics here: no lock, no allocation. Everything an
//! operator wants to look at but the answer path does not need (history, last failure
//! text, counters) sits behind a mutex that only probes and the admin side take.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

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
struct CheckCounters {
    /// Non-cumulative bucket counts; the last one is above every bound.
    buckets: [AtomicU64; CHECK_BUCKETS.len() + 1],
    sum_us: AtomicU64,
    failures: [AtomicU64; FAILURE_REASONS.len()],
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

/// A weight a node reported about itself (least load, agent-check style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reported {
    /// Use this weight instead of the configured one.
    Weight(u32),
    /// Use this percentage of the configured weight.
    Percent(u32),
}

/// Encoding of `Reported` in one `AtomicU32`.
const NO_REPORT: u32 = u32::MAX;
const PERCENT_FLAG: u32 = 1 << 31;

impl Reported {
    fn encode(r: Option<Reported>) -> u32 {
        match r {
            None => NO_REPORT,
            Some(Reported::Weight(w)) => w.min(PERCENT_FLAG - 1),
            Some(Reported::Percent(p)) => PERCENT_FLAG | p.min(PERCENT_FLAG - 2),
        }
    }

    fn decode(v: u32) -> Option<Reported> {
        if v == NO_REPORT {
            None
        } else if v & PERCENT_FLAG != 0 {
            Some(Reported::Percent(v & !PERCENT_FLAG))
        } else {
            Some(Reported::Weight(v))
        }
    }

    /// The weight to use for a node configured with `configured`.
    pub fn apply(self, configured: u32) -> u32 {
        match self {
            Reported::Weight(w) => w,
            // Round up so that a small percentage of a small weight does not become 0:
            // only an explicit 0 takes a node out.
            Reported::Percent(p) => (configured as u64 * p as u64).div_ceil(100) as u32,
        }
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
        let c = &self.counters;
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
    pub fn check_totals(&self) -> CheckTotals {
        let c = &self.counters;
        CheckTotals {
            buckets: std::array::from_fn(|i| c.buckets[i].load(Relaxed)),
            sum: c.sum_us.load(Relaxed) as f64 / 1e6,
            failures: std::array::from_fn(|i| c.failures[i].load(Relaxed)),
        }
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
        self.state.store(
            match h {
                Health::Unknown => 0,
                Health::Up => 1,
                Health::Down => 2,
            },
            Relaxed,
        );
    }

    pub(crate) fn set_reported(&self, r: Option<Reported>) {
        self.reported.store(Reported::encode(r), Relaxed);
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

    /// Test hook: sets the state directly, as if probes had decided it.
    #[doc(hidden)]
    pub fn force(&self, h: Health, came_back_at: Option<Instant>, srtt: Option<Duration>) {
        self.set_health(h, came_back_at);
        if let Some(r) = srtt {
            self.srtt_us.store(r.as_micros() as u32, Relaxed);
        }
    }

    /// Test hook: sets the reported weight directly.
    #[doc(hidden)]
    pub fn force_reported(&self, r: Option<Reported>) {
        self.set_reported(r);
    }
}

/// Operator override of one node in one pool (HAProxy's `ready` / `drain` / `maint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminState {
    /// No override: health decides.
    Ready,
    /// Not handed out in new answers; still counted as configured (for planned removal).
    Drain,
    /// Out of service: not handed out, even when every node is down.
    Maint,
}

/// Admin override slots of one pool node. Survive zone reloads (keyed by pool name and
/// address in the monitor).
///
/// Also remembers when the node was last put into an answer and until when that answer
/// may be cached, so that the admin API can say when a drained node is safe to stop.
#[derive(Debug)]
pub struct NodeAdmin {
    state: AtomicU8,
    weight: AtomicU32,
    /// Milliseconds since the monitor's epoch, plus one, of the last answer naming the
    /// node (0: never), kept to [`SERVED_GRANULARITY_MS`].
    served_ms: AtomicU64,
    /// Milliseconds since the epoch until which some answer naming the node may still be
    /// cached: the largest (served time + TTL) seen, plus one (0: never).
    expires_ms: AtomicU64,
}

/// Resolution of the last-served time: the answer path stores at most once per this many
/// milliseconds per node, so steady traffic does not keep a cache line bouncing between
/// cores. The admin API adds it to expiry times, which keeps them on the safe side.
pub const SERVED_GRANULARITY_MS: u64 = 100;

impl Default for NodeAdmin {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(0),
            weight: AtomicU32::new(u32::MAX),
            served_ms: AtomicU64::new(0),
            expires_ms: AtomicU64::new(0),
        }
    }
}

impl NodeAdmin {
    /// Current override (lock-free).
    #[inline]
    pub fn state(&self) -> AdminState {
        match self.state.load(Relaxed) {
            1 => AdminState::Drain,
            2 => AdminState::Maint,
            _ => AdminState::Ready,
        }
    }

    /// Sets the override.
    pub fn set_state(&self, s: AdminState) {
        let v = match s {
            AdminState::Ready => 0,
            AdminState::Drain => 1,
            AdminState::Maint => 2,
        };
        self.state.store(v, Relaxed);
    }

    /// Weight override, if any (lock-free). Takes precedence over configured and reported
    /// weights; 0 takes the node out.
    #[inline]
    pub fn weight(&self) -> Option<u32> {
        match self.weight.load(Relaxed) {
            u32::MAX => None,
            w => Some(w),
        }
    }

    /// Sets or clears the weight override.
    pub fn set_weight(&self, w: Option<u32>) {
        self.weight
            .store(w.map_or(u32::MAX, |w| w.min(u32::MAX - 1)), Relaxed);
    }

    /// Notes that the node was put into an answer with `ttl`, `now_ms` milliseconds after
    /// the monitor's epoch (the answer path: two relaxed loads, and stores at most once per
    /// [`SERVED_GRANULARITY_MS`] or when the expiry moves by more than that).
    #[inline]
    pub fn note_served(&self, now_ms: u64, ttl: u32) {
        let served = now_ms + 1;
        let expires = served + ttl as u64 * 1000;
        // 0 means "never": the first serve is always recorded, even within the first
        // granule after start.
        let last = self.served_ms.load(Relaxed);
        if last == 0 || served >= last + SERVED_GRANULARITY_MS {
            self.served_ms.store(served, Relaxed);
        }
        let last = self.expires_ms.load(Relaxed);
        if last == 0 || expires >= last + SERVED_GRANULARITY_MS {
            self.expires_ms.store(expires, Relaxed);
        }
    }

    /// When the node was last put into an answer, if ever (to within
    /// [`SERVED_GRANULARITY_MS`]), as an offset from the monitor's epoch.
    pub fn last_served(&self) -> Option<Duration> {
        match self.served_ms.load(Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms - 1)),
        }
    }

    /// Until when an answer naming the node may still sit in a resolver cache, as an offset
    /// from the monitor's epoch, rounded up by [`SERVED_GRANULARITY_MS`]; `None` if it has
    /// never been served.
    pub fn cached_until(&self) -> Option<Duration> {
        match self.expires_ms.load(Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms - 1 + SERVED_GRANULARITY_MS)),
        }
    }
}

/// The `rise` / `fall` state machine of one target.
///
/// The first result decides the state at once (so the first answer after start is
/// already right, as with gdnsd); after that it takes `rise` consecutive successes to
/// come up and `fall` consecutive failures to go down.
#[derive(Debug, Clone)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    up: Option<bool>,
    ok_run: u32,
    fail_run: u32,
}

impl Hysteresis {
    /// A machine with no result yet.
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            up: None,
            ok_run: 0,
            fail_run: 0,
        }
    }

    /// Records one result; returns `(from, to)` when the state changes.
    pub fn record(&mut self, ok: bool) -> Option<(Health, Health)> {
        if ok {
            self.ok_run = self.ok_run.saturating_add(1);
            self.fail_run = 0;
        } else {
            self.fail_run = self.fail_run.saturating_add(1);
            self.ok_run = 0;
        }
        let from = self.health();
        let to_up = match self.up {
            None => ok,
            Some(false) => self.ok_run >= self.rise,
            Some(true) => self.fail_run < self.fall,
        };
        self.up = Some(to_up);
        let to = self.health();
        (from != to).then_some((from, to))
    }

    /// Current state.
    pub fn health(&self) -> Health {
        match self.up {
            None => Health::Unknown,
            Some(true) => Health::Up,
            Some(false) => Health::Down,
        }
    }

    /// (consecutive successes, consecutive failures).
    pub fn runs(&self) -> (u32, u32) {
        (self.ok_run, self.fail_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_result_decides_then_rise_and_fall_apply() {
        let mut h = Hysteresis::new(2, 3);
        assert_eq!(h.record(false), Some((Health::Unknown, Health::Down)));
        assert_eq!(h.record(true), None, "one success is not rise=2");
        assert_eq!(h.record(false), None, "the run restarts");
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some((Health::Down, Health::Up)));
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None, "a success resets the failure run");
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), Some((Health::Up, Health::Down)));

        let mut h = Hysteresis::new(2, 2);
        assert_eq!(h.record(true), Some((Health::Unknown, Health::Up)));
    }

    #[test]
    fn reported_weights_encode_and_apply() {
        for r in [
            None,
            Some(Reported::Weight(0)),
            Some(Reported::Weight(7)),
            Some(Reported::Percent(50)),
        ] {
            assert_eq!(Reported::decode(Reported::encode(r)), r);
        }
        assert_eq!(Reported::Percent(50).apply(3), 2);
        assert_eq!(Reported::Percent(1).apply(1), 1);
        assert_eq!(Reported::Percent(0).apply(5), 0);
        assert_eq!(Reported::Weight(9).apply(1), 9);
    }

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
    fn admin_slots() {
        let a = NodeAdmin::default();
        assert_eq!((a.state(), a.weight()), (AdminState::Ready, None));
        a.set_state(AdminState::Drain);
        a.set_weight(Some(0));
        assert_eq!((a.state(), a.weight()), (AdminState::Drain, Some(0)));
        a.set_weight(None);
        assert_eq!(a.weight(), None);
    }

    #[test]
    fn served_times_are_coarse_and_expiry_never_moves_back() {
        let a = NodeAdmin::default();
        assert_eq!((a.last_served(), a.cached_until()), (None, None));
        a.note_served(1_000, 20);
        assert_eq!(a.last_served(), Some(Duration::from_millis(1_000)));
        let until = Duration::from_millis(21_000 + SERVED_GRANULARITY_MS);
        assert_eq!(a.cached_until(), Some(until));
        // Within the granularity: not stored again.
        a.note_served(1_050, 20);
        assert_eq!(a.last_served(), Some(Duration::from_millis(1_000)));
        // A later answer with a shorter (degraded) TTL does not shorten the expiry.
        a.note_served(2_000, 5);
        assert_eq!(a.last_served(), Some(Duration::from_millis(2_000)));
        assert_eq!(a.cached_until(), Some(until));
        a.note_served(3_000, 20);
        assert_eq!(
            a.cached_until(),
            Some(Duration::from_millis(23_000 + SERVED_GRANULARITY_MS))
        );
    }

    #[test]
    fn a_node_served_right_after_start_is_recorded() {
        let a = NodeAdmin::default();
        a.note_served(0, 20);
        assert_eq!(a.last_served(), Some(Duration::ZERO));
        assert_eq!(
            a.cached_until(),
            Some(Duration::from_millis(20_000 + SERVED_GRANULARITY_MS))
        );
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
