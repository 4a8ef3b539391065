//! The bound on plain-HTTP check connections kept open between checks
//! (`reuse_connection = true`).
//!
//! Without reuse a probe holds a descriptor only while a check is in flight, and the
//! in-flight cap keeps that within the descriptors reserved for probes. A kept connection
//! holds its descriptor between checks too, so kept connections are counted here and
//! capped at what the reserve leaves beside the checks in flight
//! ([`crate::limits::Budget::kept_connections`]). A probe that finds the cap reached closes
//! its connection after the check, as without reuse: checking goes on, only the saving is
//! lost. The count is one atomic shared by every probe of the monitor. A probe's kept
//! connection lives in its `Reuse`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How many check connections may be kept, and how many are.
#[derive(Debug)]
pub struct KeptConnections {
    held: AtomicUsize,
    max: usize,
}

impl KeptConnections {
    /// A bound of `max` kept connections (0: none is kept).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicUsize::new(0),
            max,
        })
    }

    /// A slot for one more kept connection, if the bound allows it.
    pub fn try_take(self: &Arc<Self>) -> Option<KeptSlot> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| KeptSlot(self.clone()))
    }

    /// Connections kept now (including any in use by a check).
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// One kept connection's place in the bound, given back when dropped (with its
/// connection: on a failure, a timeout, or when the probe ends).
#[derive(Debug)]
pub struct KeptSlot(Arc<KeptConnections>);

impl Drop for KeptSlot {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection kept between two checks, with its place in the bound.
pub(super) struct Kept {
    pub(super) stream: tokio::net::TcpStream,
    /// Given back when the connection is dropped.
    _slot: KeptSlot,
}

/// The kept connection of a probe with `reuse_connection = true`.
pub(super) struct Reuse {
    bound: Arc<KeptConnections>,
    /// Taken out for a check, put back after it: a check that fails or times out drops
    /// it, which closes the connection and frees its slot.
    kept: Mutex<Option<Kept>>,
}

impl Reuse {
    pub(super) fn new(bound: &Arc<KeptConnections>) -> Self {
        Self {
            bound: bound.clone(),
            kept: Mutex::new(None),
        }
    }

    /// The kept connection, unless the server has sent something or closed it since the
    /// last response (an idle close, or a `408` before closing, as some servers send):
    /// then it is dropped, and the check opens a fresh one. The look is a non-blocking
    /// read, answered from the runtime's readiness state when nothing arrived.
    pub(super) fn take(&self) -> Option<Kept> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        match kept.stream.try_read(&mut [0u8; 1]) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Some(kept),
            _ => None,
        }
    }

    /// Puts back the connection taken for this check.
    pub(super) fn put(&self, kept: Kept) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(kept);
    }

    /// Keeps a fresh connection for the next check if the bound has room; otherwise it
    /// is dropped (closed) as without reuse.
    pub(super) fn keep(&self, stream: tokio::net::TcpStream) {
        if let Some(slot) = self.bound.try_take() {
            self.put(Kept {
                stream,
                _slot: slot,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back() {
        let k = KeptConnections::new(2);
        let a = k.try_take().unwrap();
        let b = k.try_take().unwrap();
        assert!(k.try_take().is_none());
        assert_eq!(k.held(), 2);
        drop(a);
        let c = k.try_take().unwrap();
        drop((b, c));
        assert_eq!(k.held(), 0);
        assert!(KeptConnections::new(0).try_take().is_none());
    }
}
