//! Whether this instance is part of the cluster, and what it does when etcd is gone.
//!
//! * `joining`: started, not yet registered; the first local check of each node decides
//!   its state (as in single-instance mode), no share of the probes yet.
//! * `joined`: holds its lease, probes its share, serves the cluster view.
//! * `degraded`: etcd unreachable or the lease lost, for less than the grace period:
//!   keeps answering from the last view and keeps probing its last share.
//! * `fallback`: unreachable for longer than the grace period: probes every node itself
//!   and serves its own results, like a single instance, until it joins again.
//!
//! Every change is logged once, at WARN when leaving `joined`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Not yet registered.
    Joining,
    /// Registered and in sync.
    Joined,
    /// etcd lost, within the grace period: last view kept.
    Degraded,
    /// etcd lost beyond the grace period: local probing of every node.
    Fallback,
}

impl Mode {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Joining => "joining",
            Mode::Joined => "joined",
            Mode::Degraded => "degraded",
            Mode::Fallback => "fallback",
        }
    }
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Mode::Joined,
            2 => Mode::Degraded,
            3 => Mode::Fallback,
            _ => Mode::Joining,
        }
    }
    fn to_u8(self) -> u8 {
        match self {
            Mode::Joining => 0,
            Mode::Joined => 1,
            Mode::Degraded => 2,
            Mode::Fallback => 3,
        }
    }
}

/// The current mode, read lock-free by the probes.
#[derive(Debug)]
pub struct ModeCell {
    mode: AtomicU8,
    /// Since when the session is not joined (`None` while joined).
    lost_since: Mutex<Option<Instant>>,
    grace: Duration,
}

impl ModeCell {
    /// Starting in `joining`.
    pub fn new(grace: Duration) -> Self {
        Self {
            mode: AtomicU8::new(0),
            lost_since: Mutex::new(Some(Instant::now())),
            grace,
        }
    }

    /// The mode now.
    pub fn get(&self) -> Mode {
        Mode::from_u8(self.mode.load(Relaxed))
    }

    /// Whether answers do not come from a fully working cluster view.
    pub fn degraded(&self) -> bool {
        matches!(self.get(), Mode::Degraded | Mode::Fallback)
    }

    fn set(&self, m: Mode, why: &str) {
        let old = Mode::from_u8(self.mode.swap(m.to_u8(), Relaxed));
        if old == m {
            return;
        }
        if m == Mode::Joined {
            tracing::info!(target: "roundel::cluster", from = old.as_str(), "cluster: joined; probing this instance's share and serving the shared view");
        } else if m == Mode::Fallback {
            tracing::warn!(target: "roundel::cluster", from = old.as_str(), reason = why, grace_s = self.grace.as_secs_f64(), "cluster: etcd unreachable beyond the grace period; probing every node locally");
        } else {
            tracing::warn!(target: "roundel::cluster", from = old.as_str(), to = m.as_str(), reason = why, "cluster: not in sync with etcd; answering from the last view");
        }
    }

    /// The session joined (lease held, view listed).
    pub fn joined(&self) {
        *self.lost_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.set(Mode::Joined, "");
    }

    /// The session ended or failed with `why`.
    pub fn lost(&self, why: &str) {
        let mut since = self.lost_since.lock().unwrap_or_else(|e| e.into_inner());
        if since.is_none() {
            *since = Some(Instant::now());
        }
        drop(since);
        if self.get() == Mode::Joined {
            self.set(Mode::Degraded, why);
        }
        self.tick(why);
    }

    /// Moves to `fallback` once the grace period is over (call it periodically).
    pub fn tick(&self, why: &str) {
        let since = *self.lost_since.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = since
            && t.elapsed() >= self.grace
            && self.get() != Mode::Fallback
        {
            self.set(Mode::Fallback, why);
        }
    }
}
