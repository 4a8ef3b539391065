//! Logs each pool's answering-state changes: WARN when a pool goes all down (its
//! `all_down` mode then decides what it hands out: dead addresses, the last healthy ones,
//! nothing, or SERVFAIL), INFO when it answers from healthy nodes again.
//!
//! A task of its own, started by the server beside the health monitor, looks at every
//! pool once a [`TICK`]. It runs whether or not the admin listener does, so a server
//! without one still says when it starts handing out dead addresses. It is off the query
//! path: it reads the snapshot and the nodes' atomics, as the status page does, through
//! [`crate::policy::answering`], which runs the answer path's selection without counting
//! it as served.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::policy::answering::{Answering, State, answering};
use crate::shutdown::Stopping;
use crate::zone::{Snapshot, SnapshotCell};

/// How often the pools are looked at: a pool going all down is logged within this.
pub const TICK: Duration = Duration::from_secs(1);

/// One pool's answering state changed between two looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The pool's name.
    pub pool: String,
    /// Its state at the previous look (`None` at the first look or for a new pool).
    pub before: Option<State>,
    /// Its state now.
    pub now: Answering,
}

/// The last answering state of each pool.
#[derive(Debug, Default)]
pub struct PoolWatch {
    last: HashMap<String, State>,
}

impl PoolWatch {
    /// Looks at every pool of `snapshot` and returns those whose state changed since the
    /// last look; pools no longer in the snapshot are forgotten.
    pub fn look(&mut self, snapshot: &Snapshot, now: Instant) -> Vec<Change> {
        let pools = snapshot.pool_runtimes();
        let mut changes = Vec::new();
        let mut seen = HashMap::with_capacity(pools.len());
        for (_, p) in pools {
            let name = p.name().to_ascii();
            let a = answering(p, now);
            let before = self.last.get(&name).copied();
            seen.insert(name.clone(), a.value);
            if before != Some(a.value) {
                changes.push(Change {
                    pool: name,
                    before,
                    now: a,
                });
            }
        }
        self.last = seen;
        changes
    }
}

/// Logs a change worth an operator's attention: entering all-down (WARN, also at the
/// first look, since a pool all down from the start hands out the same dead addresses),
/// and leaving it (INFO). Other changes (degraded, failover) are visible in the API, the
/// page and `roundel_pool_answering`; the node going down is already logged by health.
pub fn log(change: &Change) {
    let a = &change.now;
    if a.value == State::AllDown {
        tracing::warn!(
            target: "roundel::health",
            pool = %change.pool,
            all_down = a.all_down_mode.unwrap_or_default(),
            ttl = a.ttl,
            "pool all down: {}", a.detail
        );
    } else if change.before == Some(State::AllDown) {
        tracing::info!(
            target: "roundel::health",
            pool = %change.pool,
            state = a.state,
            "pool answering again: {}", a.detail
        );
    }
}

/// Looks at the pools of the snapshot being served every [`TICK`] until the server
/// stops, logging the changes.
pub async fn run(cell: Arc<SnapshotCell>, mut stop: Stopping) {
    let mut watch = PoolWatch::default();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.wait() => return,
        }
        let snapshot = cell.load_full();
        for change in watch.look(&snapshot, Instant::now()) {
            log(&change);
        }
    }
}
