//! The table of open DNS-over-TCP connections: a global cap, a per-address cap, and which
//! connection to close when a new one arrives at the cap.
//!
//! At the global cap the connection idle the longest (waiting for its next query, no query
//! being read or answered) is closed to make room, as RFC 7766 section 6.2.3 allows ("a
//! server may close idle connections"), so that a flood of idle connections cannot lock
//! real clients out; when none is idle the new connection is refused (closed at once).
//! A client address over its own cap is refused without touching anyone else's
//! connections. Addresses are counted per IPv4 address and per IPv6 /64 (one host or
//! site usually owns a whole /64).
//!
//! An evicted connection keeps its descriptor until its task has run and closed it; under a
//! burst of new connections the accept loop can evict faster than that. Evicted but not yet
//! closed connections therefore still count against the cap, with at most
//! [`EVICTIONS_IN_FLIGHT`] of them above it (the descriptor budget sets that many aside),
//! so the process never holds more than `max + EVICTIONS_IN_FLIGHT` client sockets.
//!
//! The table is locked once when a connection opens and once when it closes; the query
//! path only stores a timestamp in the connection's own atomic.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

pub use crate::limits::EVICTIONS_IN_FLIGHT;
use crate::limits::counters;

/// One open connection as the table sees it.
#[derive(Debug)]
pub struct ConnState {
    id: u64,
    key: IpAddr,
    /// Milliseconds since the table's epoch (plus one) since when the connection has been
    /// waiting for a query; 0 while a query is read or answered.
    idle_since: AtomicU64,
    /// Woken to close the connection (evicted, or the server stops).
    pub kill: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    conns: HashMap<u64, Arc<ConnState>>,
    per_address: HashMap<IpAddr, u32>,
    /// Evicted connections whose task has not closed them yet.
    closing: usize,
}

/// Open connections and their caps.
#[derive(Debug)]
pub struct ConnTable {
    inner: Mutex<Inner>,
    max: usize,
    per_address: u32,
    epoch: Instant,
}

/// The answer to a new connection.
#[derive(Debug)]
pub enum Admission {
    /// Serve it; closing (dropping) the guard frees its slot.
    Admitted(ConnGuard),
    /// The global cap is reached and no connection is idle.
    RefusedGlobal,
    /// The client address has its share.
    RefusedPerAddress,
}

/// A slot in the table, freed on drop.
#[derive(Debug)]
pub struct ConnGuard {
    table: Arc<ConnTable>,
    state: Arc<ConnState>,
}

/// The key a client address is counted under: the address (IPv4), its /64 (IPv6).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

impl ConnTable {
    /// A table for at most `max` connections, `per_address` from one client address.
    pub fn new(max: usize, per_address: u32) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            max: max.max(1),
            per_address: per_address.max(1),
            epoch: Instant::now(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides about a new connection from `ip`.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        let key = address_key(ip);
        let mut inner = self.lock();
        if inner.per_address.get(&key).copied().unwrap_or(0) >= self.per_address {
            return Admission::RefusedPerAddress;
        }
        if inner.conns.len() + inner.closing >= self.max {
            if inner.closing >= EVICTIONS_IN_FLIGHT {
                return Admission::RefusedGlobal;
            }
            // Rare (only at the cap): a linear scan for the longest idle connection.
            let oldest = inner
                .conns
                .values()
                .filter_map(|c| {
                    let since = c.idle_since.load(Relaxed);
                    (since != 0).then_some((since, c.id))
                })
                .min();
            let Some((_, id)) = oldest else {
                return Admission::RefusedGlobal;
            };
            if let Some(victim) = remove(&mut inner, id) {
                inner.closing += 1;
                victim.kill.notify_one();
                counters::TCP_EVICTED.inc();
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let state = Arc::new(ConnState {
            id,
            key,
            idle_since: AtomicU64::new(self.now()),
            kill: Notify::new(),
        });
        inner.conns.insert(id, state.clone());
        *inner.per_address.entry(key).or_insert(0) += 1;
        // Sockets open, evicted ones included until they are closed.
        counters::TCP_OPEN.fetch_add(1, Relaxed);
        Admission::Admitted(ConnGuard {
            table: self.clone(),
            state,
        })
    }

    /// Whether as many evicted connections are still closing as may be
    /// ([`EVICTIONS_IN_FLIGHT`]): the accept loop waits for them before taking more.
    pub fn evictions_full(&self) -> bool {
        self.lock().closing >= EVICTIONS_IN_FLIGHT
    }

    /// Closes every connection (the server stops).
    pub fn close_all(&self) {
        for c in self.lock().conns.values() {
            c.kill.notify_one();
        }
    }
}

fn remove(inner: &mut Inner, id: u64) -> Option<Arc<ConnState>> {
    let c = inner.conns.remove(&id)?;
    if let Some(n) = inner.per_address.get_mut(&c.key) {
        *n -= 1;
        if *n == 0 {
            inner.per_address.remove(&c.key);
        }
    }
    Some(c)
}

impl ConnGuard {
    /// The connection's state.
    pub fn state(&self) -> &ConnState {
        &self.state
    }

    /// The connection waits for a query from now on (it may be evicted).
    #[inline]
    pub fn idle(&self) {
        self.state.idle_since.store(self.table.now(), Relaxed);
    }

    /// A query is being read or answered (it is not evicted meanwhile).
    #[inline]
    pub fn busy(&self) {
        self.state.idle_since.store(0, Relaxed);
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        if remove(&mut inner, self.state.id).is_none() {
            // Evicted earlier: its socket closes now.
            inner.closing -= 1;
        }
        counters::TCP_OPEN.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(a: Admission) -> ConnGuard {
        match a {
            Admission::Admitted(g) => g,
            other => panic!("not admitted: {other:?}"),
        }
    }

    #[test]
    fn caps_evict_the_longest_idle_and_count_per_address() {
        let t = ConnTable::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let a1 = admitted(t.admit(a));
        let a2 = admitted(t.admit(a));
        assert!(matches!(t.admit(a), Admission::RefusedPerAddress));
        let b1 = admitted(t.admit(b));
        // At the cap: a1 is busy, a2 idle since before b1 (or as long, and older): a2 goes.
        a1.busy();
        let c1 = admitted(t.admit(c));
        assert_eq!(t.len(), 3);
        // a2 has not closed yet and still counts, but an eviction may be in flight: b1 goes.
        let c2 = admitted(t.admit(c));
        assert_eq!(t.len(), 3);
        assert_eq!(t.lock().closing, 2);
        drop(a2);
        drop(b1);
        assert_eq!(t.lock().closing, 0);
        // Nothing idle: refused.
        c1.busy();
        c2.busy();
        assert!(matches!(t.admit(b), Admission::RefusedGlobal));
        drop(c2);
        assert_eq!(t.len(), 2);
        let _b2 = admitted(t.admit(b));
        // a1 alone from its address: one more is allowed, at the cost of the idle b2.
        let _a3 = admitted(t.admit(a));
        assert!(matches!(t.admit(a), Admission::RefusedPerAddress));
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address_key("192.0.2.9".parse().unwrap()),
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
    }
}
