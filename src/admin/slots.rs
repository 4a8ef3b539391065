//! The admin listener's connection slots: a cap, and which connection to close when a new
//! one arrives at the cap.
//!
//! At the cap the connection idle the longest (no request being answered, no byte moved
//! for the longest time) is closed to make room, as for DNS over TCP
//! ([`crate::dns::tcp_conns`]): otherwise a client holding `admin_connections` idle or
//! trickling connections would lock every operator out of the API until the idle timeout,
//! and could renew them forever. A connection whose request is being answered is never
//! closed; when every connection is answering, the new one is refused (closed at once).
//!
//! An evicted connection keeps its descriptor until its task has run and closed it. At most
//! [`ADMIN_EVICTIONS_IN_FLIGHT`] of them exist at once (the accept loop waits for them
//! before taking more), so the listener never holds more than
//! `max + ADMIN_EVICTIONS_IN_FLIGHT` client sockets; that one socket comes out of the
//! budget's fixed share ([`crate::limits::FIXED_DESCRIPTORS`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

use crate::limits::counters;

/// Admin connections evicted at the cap but not yet closed, at most.
pub const ADMIN_EVICTIONS_IN_FLIGHT: usize = 1;

/// One open connection as the slots see it.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    /// Milliseconds since the table's epoch (plus one) of the last byte read or written.
    last: AtomicU64,
    /// Requests being answered (HTTP/1.1 answers one at a time; a counter keeps it simple).
    busy: AtomicU32,
    /// Woken to close the connection (evicted).
    pub kill: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    conns: HashMap<u64, Arc<Slot>>,
    /// Evicted connections whose task has not closed them yet.
    closing: usize,
}

/// Open admin connections and their cap.
#[derive(Debug)]
pub struct Slots {
    inner: Mutex<Inner>,
    max: usize,
    epoch: Instant,
    /// Woken when the last connection (open or closing) is gone.
    emptied: Notify,
}

/// A connection's place in the table, freed on drop.
#[derive(Debug)]
pub struct SlotGuard {
    table: Arc<Slots>,
    slot: Arc<Slot>,
}

/// Marks its connection busy (not to be evicted) while it lives: one per request.
#[derive(Debug)]
pub struct BusyGuard {
    table: Arc<Slots>,
    slot: Arc<Slot>,
}

impl Slots {
    /// A table for at most `max` connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            max: max.max(1),
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

    /// Completes once no connection is open or closing (the listener stops).
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

    /// Whether as many evicted connections are still closing as may be: the accept loop
    /// waits for them before taking more.
    pub fn evictions_full(&self) -> bool {
        self.lock().closing >= ADMIN_EVICTIONS_IN_FLIGHT
    }

    /// A slot for a new connection, evicting the longest idle one at the cap; `None` when
    /// the cap is reached and no connection can be evicted.
    pub fn admit(self: &Arc<Self>) -> Option<SlotGuard> {
        let mut inner = self.lock();
        if inner.conns.len() + inner.closing >= self.max {
            if inner.closing >= ADMIN_EVICTIONS_IN_FLIGHT {
                return None;
            }
            // Only at the cap, over at most `max` (64 by default) entries.
            let (_, id) = inner
                .conns
                .values()
                .filter(|c| c.busy.load(Relaxed) == 0)
                .map(|c| (c.last.load(Relaxed), c.id))
                .min()?;
            let victim = inner.conns.remove(&id)?;
            inner.closing += 1;
            victim.kill.notify_one();
            counters::ADMIN_EVICTED.inc();
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let slot = Arc::new(Slot {
            id,
            last: AtomicU64::new(self.now()),
            busy: AtomicU32::new(0),
            kill: Notify::new(),
        });
        inner.conns.insert(id, slot.clone());
        Some(SlotGuard {
            table: self.clone(),
            slot,
        })
    }
}

impl SlotGuard {
    /// The connection's slot.
    pub fn slot(&self) -> &Slot {
        &self.slot
    }

    /// Notes traffic on the connection now.
    #[inline]
    pub fn touch(&self) {
        self.slot.last.store(self.table.now(), Relaxed);
    }

    /// Milliseconds since the last traffic.
    pub fn idle_ms(&self) -> u64 {
        self.table
            .now()
            .saturating_sub(self.slot.last.load(Relaxed))
    }

    /// Marks the connection busy until the returned guard is dropped.
    pub fn busy(&self) -> BusyGuard {
        self.slot.busy.fetch_add(1, Relaxed);
        BusyGuard {
            table: self.table.clone(),
            slot: self.slot.clone(),
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        if inner.conns.remove(&self.slot.id).is_none() {
            // Evicted earlier: its socket closes now.
            inner.closing -= 1;
        }
        if inner.conns.is_empty() && inner.closing == 0 {
            self.table.emptied.notify_waiters();
        }
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.slot.busy.fetch_sub(1, Relaxed);
        // The answer is out: idle from now.
        self.slot.last.store(self.table.now(), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(g: &SlotGuard, ms: u64) {
        g.slot.last.store(ms, Relaxed);
    }

    #[test]
    fn at_the_cap_the_longest_idle_goes_and_busy_ones_stay() {
        let t = Slots::new(2);
        let a = t.admit().unwrap();
        let b = t.admit().unwrap();
        at(&a, 1);
        at(&b, 2);
        let busy_a = a.busy();
        // a is answering: b goes, although a has been quiet longer.
        let c = t.admit().unwrap();
        assert!(Arc::ptr_eq(&t.lock().conns[&0], &a.slot));
        assert!(!t.lock().conns.contains_key(&1));
        // b has not closed yet: no second eviction in flight.
        assert!(t.evictions_full());
        drop(busy_a);
        assert!(t.admit().is_none());
        drop(b);
        assert!(!t.evictions_full());
        // a's answer ended after c's last traffic: c goes.
        at(&a, 10);
        at(&c, 5);
        let d = t.admit().unwrap();
        assert_eq!(t.len(), 2);
        assert!(!t.lock().conns.contains_key(&c.slot.id));
        drop(c);
        // Everyone answering: refused.
        let ba = a.busy();
        let _bd = d.busy();
        assert!(t.admit().is_none());
        drop(ba);
        drop(a);
        assert_eq!(t.len(), 1);
        assert!(t.admit().is_some());
    }

    #[tokio::test]
    async fn all_closed_waits_for_open_and_evicted_connections() {
        let t = Slots::new(1);
        let a = t.admit().unwrap();
        // a is evicted for b; both must be gone.
        let b = t.admit().unwrap();
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
