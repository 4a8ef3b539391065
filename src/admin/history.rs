//! The last hour of each node's state, for the status page.
//!
//! A sampler task, off the query path, looks at every pool once a [`STEP`] and appends each node's state to a ring buffer of [`CELLS`] entries, which the
//! status page draws as a timeline, with each node's sampled answer count of the step
//! (for its share of recent answers). Memory is bounded: nine bytes per node per step.
//! (Pools going all down are logged by [`crate::pool_watch`], which runs with or without
//! the admin listener.)

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use super::Admin;
use crate::node::{AdminState, Health, NodeRuntime};
use crate::shutdown::Stopping;

/// One timeline cell: how often the sampler looks at the pools.
pub const STEP: Duration = Duration::from_secs(30);
/// Cells kept: one hour.
pub const CELLS: usize = 120;

/// Ring buffers of node states and of their sampled answer counts.
#[derive(Debug, Default)]
pub struct History {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: HashMap<(String, IpAddr), VecDeque<u8>>,
    /// Sampled answers per node per step, and the counter at the last step.
    answers: HashMap<(String, IpAddr), (VecDeque<u64>, u64)>,
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

    /// Estimated answers naming `addr` in `pool` over the recorded hour (sampled counts
    /// times [`crate::node::ANSWER_SAMPLE`]), plus those since the last step.
    pub fn recent_answers(&self, pool: &str, node: &NodeRuntime) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let sampled = match inner.answers.get(&(pool.to_owned(), node.spec.addr)) {
            Some((cells, last)) => {
                cells.iter().sum::<u64>() + node.admin.sampled().saturating_sub(*last)
            }
            None => node.admin.sampled(),
        };
        sampled * crate::node::ANSWER_SAMPLE
    }

    /// One look at every pool: a cell more for each node.
    pub fn tick(&self, admin: &Admin) {
        let snapshot = admin.reloader.cell().load_full();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen_nodes = HashSet::new();
        for (_, p) in snapshot.pool_runtimes() {
            let name = p.name().to_ascii();
            for n in p.nodes() {
                let ring = inner.nodes.entry((name.clone(), n.spec.addr)).or_default();
                if ring.len() == CELLS {
                    ring.pop_front();
                }
                ring.push_back(letter(n));
                let now_count = n.admin.sampled();
                let (cells, last) = inner
                    .answers
                    .entry((name.clone(), n.spec.addr))
                    .or_insert_with(|| (VecDeque::new(), now_count));
                if cells.len() == CELLS {
                    cells.pop_front();
                }
                cells.push_back(now_count.saturating_sub(*last));
                *last = now_count;
                seen_nodes.insert((name.clone(), n.spec.addr));
            }
        }
        inner.nodes.retain(|k, _| seen_nodes.contains(k));
        inner.answers.retain(|k, _| seen_nodes.contains(k));
    }
}

/// Samples until the server stops (or the admin side is gone).
pub async fn run(admin: Weak<Admin>, mut stop: Stopping) {
    let mut interval = tokio::time::interval(STEP);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.wait() => return,
        }
        let Some(admin) = admin.upgrade() else {
            return;
        };
        admin.history.tick(&admin);
    }
}
