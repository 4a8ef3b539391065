//! What lets the answer path skip reading every node's state on every answer: a
//! process-wide *state epoch*, advanced whenever any node's health, reported weight or
//! admin override changes, and per pool and address family a [`Memo`] of the last steady
//! selection, tagged with the epoch it was computed at.
//!
//! Node state changes a few times a day, answers come by the hundred thousand a second:
//! a memo whose epoch is still current is exactly what reading the nodes again would give.
//! The epoch is advanced with `Release` after the state stores; a reader loads it with
//! `Acquire` before reading any node, so a memo computed from state older than some change
//! always carries an older epoch than the one readers see after the change.
//!
//! Only the writers of node state (the health monitor, probes, the admin API) advance the
//! epoch, and only when a value actually changes, so a check that confirms what is known
//! costs the answer path nothing. One epoch for the whole process: a change anywhere makes
//! every pool's memo stale once, which is cheap (the next answer recomputes it) and keeps
//! a node shared by several pools, or several servers in one test process, simple.

use std::sync::atomic::{AtomicU64, Ordering, fence};

/// Advanced on every change of node state that selection reads; starts at 1 so that a
/// fresh [`Memo`] (epoch 0) is never current.
static STATE_EPOCH: AtomicU64 = AtomicU64::new(1);

/// The current state epoch (one shared, read-mostly cache line).
#[inline]
pub fn state_epoch() -> u64 {
    STATE_EPOCH.load(Ordering::Acquire)
}

/// Says that node state selection reads has changed: every memo taken before is stale.
/// Called after the new state is stored.
pub(crate) fn state_changed() {
    STATE_EPOCH.fetch_add(1, Ordering::Release);
}

/// One memo of a selection: two opaque words (what [`crate::policy`] keeps: the candidate
/// set and a few flags) and the epoch they were computed at, behind a sequence lock, so
/// that readers never take a lock and never see the words of two different writes. A
/// writer that finds another one writing gives up: the memo is only a shortcut.
#[derive(Debug, Default)]
pub struct Memo {
    /// Even when stable; odd while a writer is writing.
    seq: AtomicU64,
    epoch: AtomicU64,
    words: [AtomicU64; 2],
}

impl Memo {
    /// The words if they were computed at `epoch`.
    #[inline]
    pub fn get(&self, epoch: u64) -> Option<[u64; 2]> {
        let s1 = self.seq.load(Ordering::Acquire);
        let e = self.epoch.load(Ordering::Relaxed);
        let w = [
            self.words[0].load(Ordering::Relaxed),
            self.words[1].load(Ordering::Relaxed),
        ];
        fence(Ordering::Acquire);
        let s2 = self.seq.load(Ordering::Relaxed);
        (s1 & 1 == 0 && s1 == s2 && e == epoch).then_some(w)
    }

    /// Stores `words`, computed from state read at `epoch` (lock-free; skipped while
    /// another thread is storing).
    pub fn put(&self, epoch: u64, words: [u64; 2]) {
        let s = self.seq.load(Ordering::Relaxed);
        if s & 1 == 1
            || self
                .seq
                .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        self.epoch.store(epoch, Ordering::Relaxed);
        self.words[0].store(words[0], Ordering::Relaxed);
        self.words[1].store(words[1], Ordering::Relaxed);
        self.seq.store(s + 2, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_memo_is_current_only_at_its_epoch() {
        let m = Memo::default();
        let e = state_epoch();
        assert_eq!(m.get(e), None, "a fresh memo is never current");
        m.put(e, [5, 7]);
        assert_eq!(m.get(e), Some([5, 7]));
        state_changed();
        let e2 = state_epoch();
        assert!(e2 > e);
        assert_eq!(m.get(e2), None, "a change makes it stale");
        m.put(e2, [1, 2]);
        assert_eq!(m.get(e2), Some([1, 2]));
    }

    /// Readers racing a writer see either nothing or one write's two words, never a mix.
    #[test]
    fn readers_never_see_torn_words() {
        let m = Arc::new(Memo::default());
        let e = state_epoch();
        m.put(e, [0, !0]);
        let writer = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                for i in 0..200_000u64 {
                    m.put(e, [i, !i]);
                }
            })
        };
        let mut seen = 0u64;
        for _ in 0..400_000 {
            if let Some([a, b]) = m.get(e) {
                assert_eq!(b, !a, "torn read");
                seen += 1;
            }
        }
        writer.join().unwrap();
        assert_eq!(m.get(e).map(|[a, _]| a), Some(199_999));
        assert!(seen > 0);
    }
}
