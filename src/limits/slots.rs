//! A table of open connections with a cap, an optional cap per client, and which
//! connection to close when a new one arrives at the cap: the DNS-over-TCP listener and
//! the admin listener both keep one.
//!
//! At the cap the connection idle the longest (waiting for its next query or request,
//! nothing being read or answered) is closed to make room, as RFC 7766 section 6.2.3
//! allows for DNS ("a server may close idle connections"), so that a flood of idle or
//! trickling connections cannot lock real clients (or operators) out until the idle
//! timeout, and renew itself forever. A connection being answered is never closed; when
//! none is idle the new connection is refused (closed at once). A client over its own cap
//! is refused without touching anyone else's connections.
//!
//! An evicted connection keeps its descriptor until its task has run and closed it; under
//! a burst of new connections the accept loop could evict faster than that. Evicted but
//! not yet closed connections therefore still count against the cap, with at most
//! `evictions_in_flight` of them above it (the descriptor budget sets that many aside), so
//! a listener never holds more than `max + evictions_in_flight` client sockets.
//!
//! The table is locked once when a connection opens and once when it closes; in between a
//! connection only stores timestamps in its own atomic.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

/// The caps of one listener's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCaps {
    /// Connections open at once.
    pub max: usize,
    /// Connections from one client key at once (`None`: no per-client cap).
    pub per_client: Option<u32>,
    /// Evicted connections still closing, at most, beyond `max`.
    pub evictions_in_flight: usize,
}

/// One open connection as the table sees it.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    client: Option<IpAddr>,
    /// Milliseconds since the table's epoch (plus one) since when the connection has
    /// been idle (last moved a byte while idle); 0 while something is read or answered.
    idle_since: AtomicU64,
    /// Woken to close the connection (evicted, or the server stops).
    pub kill: Notify,
    /// Set when `kill` is notified, for connections served outside tokio (the DNS-over-TCP
    /// threads), which look at it when their owner wakes them.
    killed: AtomicBool,
}

impl Slot {
    /// Whether the connection was told to close (evicted, or the server stops).
    #[inline]
    pub fn killed(&self) -> bool {
        self.killed.load(Relaxed)
    }

    fn tell_to_close(&self) {
        self.killed.store(true, Relaxed);
        self.kill.notify_one();
    }
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    conns: HashMap<u64, Arc<Slot>>,
    per_client: HashMap<IpAddr, u32>,
    /// Evicted connections whose task has not closed them yet.
    closing: usize,
}

/// Open connections and their caps.
#[derive(Debug)]
pub struct SlotTable {
    inner: Mutex<Inner>,
    caps: SlotCaps,
    /// Sockets held (evicted ones included until closed), for a metric.
    held: Option<&'static AtomicU64>,
    epoch: Instant,
    /// Woken when the last connection (open or closing) is gone.
    emptied: Notify,
}

/// The answer to a new connection.
#[derive(Debug)]
pub enum Admission {
    /// Serve it; dropping the guard frees its slot. `evicted`: an idle connection was
    /// closed to make room.
    Admitted {
        /// The new connection's slot.
        guard: SlotGuard,
        /// Whether an idle connection was evicted for it.
        evicted: bool,
    },
    /// The cap is reached and no connection is idle (or evictions are still closing).
    RefusedGlobal,
    /// The client has its share.
    RefusedPerClient,
}

/// A connection's place in the table, freed on drop.
#[derive(Debug)]
pub struct SlotGuard {
    table: Arc<SlotTable>,
    slot: Arc<Slot>,
}

impl SlotTable {
    /// An empty table with `caps` (a cap of 0 is taken as 1).
    pub fn new(caps: SlotCaps) -> Arc<Self> {
        Self::counting(caps, None)
    }

    /// [`SlotTable::new`], keeping `held` at the number of sockets the table holds.
    pub fn counting(caps: SlotCaps, held: Option<&'static AtomicU64>) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            held,
            caps: SlotCaps {
                max: caps.max.max(1),
                per_client: caps.per_client.map(|n| n.max(1)),
                ..caps
            },
            epoch: Instant::now(),
            emptied: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Connections open now (evicted ones still closing not included).
    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Evicted connections not closed yet.
    pub fn closing(&self) -> usize {
        self.lock().closing
    }

    /// Whether as many evicted connections are still closing as may be: the accept loop
    /// waits for them before taking more.
    pub fn evictions_full(&self) -> bool {
        self.lock().closing >= self.caps.evictions_in_flight
    }

    /// Decides about a new connection from `client` (counted under that key when the
    /// table has a per-client cap).
    pub fn admit(self: &Arc<Self>, client: Option<IpAddr>) -> Admission {
        let mut inner = self.lock();
        let client = client.filter(|_| self.caps.per_client.is_some());
        if let (Some(c), Some(cap)) = (client, self.caps.per_client)
            && inner.per_client.get(&c).copied().unwrap_or(0) >= cap
        {
            return Admission::RefusedPerClient;
        }
        let mut evicted = false;
        if inner.conns.len() + inner.closing >= self.caps.max {
            if inner.closing >= self.caps.evictions_in_flight {
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
                victim.tell_to_close();
                evicted = true;
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let slot = Arc::new(Slot {
            id,
            client,
            idle_since: AtomicU64::new(self.now()),
            kill: Notify::new(),
            killed: AtomicBool::new(false),
        });
        inner.conns.insert(id, slot.clone());
        if let Some(c) = client {
            *inner.per_client.entry(c).or_insert(0) += 1;
        }
        if let Some(h) = self.held {
            h.fetch_add(1, Relaxed);
        }
        Admission::Admitted {
            guard: SlotGuard {
                table: self.clone(),
                slot,
            },
            evicted,
        }
    }

    /// Tells every open connection to close (the server stops).
    pub fn close_all(&self) {
        for c in self.lock().conns.values() {
            c.tell_to_close();
        }
    }

    /// Completes once no connection is open or closing.
    pub async fn all_closed(&self) {
        loop {
            let notified = self.emptied.notified();
            tokio::pin!(notified);
            // Registered before the check, so a connection closing in between wakes it.
            notified.as_mut().enable();
            {
                let inner = self.lock();
                if inner.conns.is_empty() && inner.closing == 0 {
                    return;
                }
            }
            notified.await;
        }
    }
}

fn remove(inner: &mut Inner, id: u64) -> Option<Arc<Slot>> {
    let c = inner.conns.remove(&id)?;
    if let Some(key) = c.client
        && let Some(n) = inner.per_client.get_mut(&key)
    {
        *n -= 1;
        if *n == 0 {
            inner.per_client.remove(&key);
        }
    }
    Some(c)
}

impl SlotGuard {
    /// The connection's slot.
    pub fn slot(&self) -> &Slot {
        &self.slot
    }

    /// The connection waits for its next query or request from now on (it may be
    /// evicted).
    #[inline]
    pub fn idle(&self) {
        self.slot.idle_since.store(self.table.now(), Relaxed);
    }

    /// [`SlotGuard::idle`] from `now`, a time the caller has read already (no clock read).
    #[inline]
    pub fn idle_at(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.table.epoch).as_millis() as u64 + 1;
        self.slot.idle_since.store(ms, Relaxed);
    }

    /// Something is read or answered (the connection is not evicted meanwhile).
    #[inline]
    pub fn busy(&self) {
        self.slot.idle_since.store(0, Relaxed);
    }

    /// Bytes moved while idle (a request arriving): idle, counted from now; no change
    /// while busy.
    #[inline]
    pub fn touch(&self) {
        let now = self.table.now();
        let _ = self
            .slot
            .idle_since
            .fetch_update(Relaxed, Relaxed, |v| (v != 0).then_some(now));
    }

    /// Milliseconds the connection has been idle (0 while busy).
    pub fn idle_ms(&self) -> u64 {
        match self.slot.idle_since.load(Relaxed) {
            0 => 0,
            since => self.table.now().saturating_sub(since),
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        if remove(&mut inner, self.slot.id).is_none() {
            // Evicted earlier: its socket closes now.
            inner.closing -= 1;
        }
        if let Some(h) = self.table.held {
            h.fetch_sub(1, Relaxed);
        }
        if inner.conns.is_empty() && inner.closing == 0 {
            self.table.emptied.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(a: Admission) -> SlotGuard {
        match a {
            Admission::Admitted { guard, .. } => guard,
            other => panic!("not admitted: {other:?}"),
        }
    }

    fn at(g: &SlotGuard, ms: u64) {
        g.slot.idle_since.store(ms, Relaxed);
    }

    #[test]
    fn caps_evict_the_longest_idle_and_count_per_client() {
        let t = SlotTable::new(SlotCaps {
            max: 3,
            per_client: Some(2),
            evictions_in_flight: 16,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let a1 = admitted(t.admit(Some(a)));
        let a2 = admitted(t.admit(Some(a)));
        assert!(matches!(t.admit(Some(a)), Admission::RefusedPerClient));
        let b1 = admitted(t.admit(Some(b)));
        // At the cap: a1 is busy, a2 idle longer than b1: a2 goes.
        a1.busy();
        at(&a2, 1);
        at(&b1, 2);
        let c1 = admitted(t.admit(Some(c)));
        // (A test runs within a millisecond: newcomers get later times explicitly.)
        at(&c1, 1000);
        assert_eq!(t.len(), 3);
        assert!(!t.lock().conns.contains_key(&a2.slot.id));
        // a2 has not closed yet and still counts, but an eviction may be in flight: b1 goes.
        let c2 = admitted(t.admit(Some(c)));
        assert_eq!(t.len(), 3);
        assert_eq!(t.closing(), 2);
        drop(a2);
        drop(b1);
        assert_eq!(t.closing(), 0);
        // Nothing idle: refused.
        c1.busy();
        c2.busy();
        assert!(matches!(t.admit(Some(b)), Admission::RefusedGlobal));
        drop(c2);
        assert_eq!(t.len(), 2);
        let _b2 = admitted(t.admit(Some(b)));
        // a1 alone from its address: one more is allowed, at the cost of the idle b2.
        let _a3 = admitted(t.admit(Some(a)));
        assert!(matches!(t.admit(Some(a)), Admission::RefusedPerClient));
    }

    #[test]
    fn evictions_in_flight_are_bounded_and_touch_keeps_busy_busy() {
        let t = SlotTable::new(SlotCaps {
            max: 2,
            per_client: None,
            evictions_in_flight: 1,
        });
        let a = admitted(t.admit(None));
        let b = admitted(t.admit(None));
        at(&a, 1);
        at(&b, 2);
        a.busy();
        a.touch();
        assert_eq!(a.idle_ms(), 0, "touch does not make a busy connection idle");
        // a is answering: b goes, although a has been quiet longer.
        let c = admitted(t.admit(None));
        at(&c, 1000);
        assert!(!t.lock().conns.contains_key(&b.slot.id));
        // b has not closed yet: no second eviction in flight.
        assert!(t.evictions_full());
        assert!(matches!(t.admit(None), Admission::RefusedGlobal));
        drop(b);
        assert!(!t.evictions_full());
        a.idle();
        assert_ne!(a.slot.idle_since.load(Relaxed), 0, "idle again");
        at(&a, 1000);
        at(&c, 1);
        let _d = admitted(t.admit(None));
        assert!(!t.lock().conns.contains_key(&c.slot.id));
        assert!(t.lock().conns.contains_key(&a.slot.id));
    }

    #[tokio::test]
    async fn all_closed_waits_for_open_and_evicted_connections() {
        let t = SlotTable::new(SlotCaps {
            max: 1,
            per_client: None,
            evictions_in_flight: 1,
        });
        let a = admitted(t.admit(None));
        // a is evicted for b; both must be gone.
        let b = admitted(t.admit(None));
        let waiter = tokio::spawn({
            let t = t.clone();
            async move { t.all_closed().await }
        });
        tokio::task::yield_now().await;
        drop(b);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("all_closed completes once the last connection is gone")
            .unwrap();
    }
}
