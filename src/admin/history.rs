//! The last hour of each node's state, and warnings when a pool goes all down.
//!
//! A sampler task, off the query path, looks at every pool once a second: it logs at WARN
//! when a pool's answering state becomes all-down (and at INFO when it recovers), and every
//! [`STEP`] it appends each node's state to a ring buffer of [`CELLS`] entries, which the
//! status page draws as a timeline. Memory is bounded: one byte per node per step.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use super::Admin;
use super::answering::{State, answering};
use crate::node::{AdminState, Health, NodeRuntime};

/// How often the sampler looks at the pools.
pub const TICK: Duration = Duration::from_secs(1);
/// One timeline cell.
pub const STEP: Duration = Duration::from_secs(30);
/// Cells kept: one hour.
pub const CELLS: usize = 120;

/// Ring buffers of node states and the last answering state of each pool.
#[derive(Debug, Default)]
pub struct History {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: HashMap<(String, IpAddr), VecDeque<u8>>,
    pools: HashMap<String, State>,
    last_step: Option<Instant>,
}

/// A node's state as one timeline letter: `u`p, `d`own, `?` unknown, d`r`ain, `m`aint.
pub fn letter(node: &NodeRuntime) -> u8 {
    if node.spec.maint || node.admin.state() == AdminState::Maint {
        return b'm';
    }
    if node.admin.state() == AdminState::Drain {
        return b'r';
    }
    match node.health.health() {
        Health::Up => b'u',
        Health::Down => b'd',
        Health::Unknown => b'?',
    }
}

impl History {
    /// The recorded states of `addr` in `pool`, oldest first, one letter per [`STEP`].
    pub fn timeline(&self, pool: &str, addr: IpAddr) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .nodes
            .get(&(pool.to_owned(), addr))
            .map(|v| v.iter().map(|&b| b as char).collect())
            .unwrap_or_default()
    }

    /// One look at every pool.
    pub fn tick(&self, admin: &Admin, now: Instant) {
        let snapshot = admin.reloader.cell().load_full();
        let pools = super::api::all_pools(&snapshot);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let step = inner
            .last_step
            .is_none_or(|t| now.duration_since(t) >= STEP);
        if step {
            inner.last_step = Some(now);
        }
        let mut seen_pools = Vec::with_capacity(pools.len());
        let mut seen_nodes = Vec::new();
        for (_, p) in pools {
            let name = p.name().to_ascii();
            let a = answering(p, now);
            let before = inner.pools.insert(name.clone(), a.value);
            if before != Some(a.value) {
                if a.value == State::AllDown {
                    tracing::warn!(
                        target: "roundel::health",
                        pool = %name,
                        all_down = a.all_down_mode.unwrap_or_default(),
                        ttl = a.ttl,
                        "pool all down: {}", a.detail
                    );
                } else if before == Some(State::AllDown) {
                    tracing::info!(target: "roundel::health", pool = %name, state = a.state, "pool answering again: {}", a.detail);
                }
            }
            if step {
                for n in p.nodes() {
                    let ring = inner.nodes.entry((name.clone(), n.spec.addr)).or_default();
                    if ring.len() == CELLS {
                        ring.pop_front();
                    }
                    ring.push_back(letter(n));
                    seen_nodes.push((name.clone(), n.spec.addr));
                }
            }
            seen_pools.push(name);
        }
        inner.pools.retain(|k, _| seen_pools.contains(k));
        if step {
            inner.nodes.retain(|k, _| seen_nodes.contains(k));
        }
    }
}

/// Samples until the admin side is gone.
pub async fn run(admin: Weak<Admin>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(admin) = admin.upgrade() else {
            return;
        };
        admin.history.tick(&admin, Instant::now());
    }
}
