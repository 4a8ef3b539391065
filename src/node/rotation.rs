//! The per-pool rotation counter, sharded by thread.
//!
//! Every pool answer takes one counter value, which drives round-robin rotation, weighted
//! draws and slow-start thinning. With one atomic per pool, every UDP worker would write the
//! same cache line for every answer of a popular pool, and the line would bounce between
//! cores. Instead each pool has [`SHARDS`] counters on their own cache lines; a UDP worker
//! announces its shard once ([`set_rotation_shard`]) and then only ever touches its own.
//! Each worker's answers for a pool still rotate evenly (its counter steps by one), and so
//! does the sum over workers. Threads that never announce a shard (TCP, the admin API)
//! share shard 0, which keeps their rotation as even as a single counter's.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters per pool. Workers beyond this share a shard with another worker, which is
/// still correct, only no longer free of contention.
pub const SHARDS: usize = 16;

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread use shard `1 + worker % (SHARDS - 1)` of every pool's counter
/// (shard 0 is left to the threads that do not call this). Called once by each UDP worker.
pub fn set_rotation_shard(worker: usize) {
    SHARD.with(|s| s.set(1 + worker % (SHARDS - 1)));
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct Line(AtomicU64);

/// A pool's rotation counter.
#[derive(Debug)]
pub struct RotationCounter {
    lines: [Line; SHARDS],
}

impl Default for RotationCounter {
    fn default() -> Self {
        Self {
            lines: std::array::from_fn(|_| Line::default()),
        }
    }
}

impl RotationCounter {
    /// The next value for the calling thread: its shard's count, offset by the shard so
    /// that workers do not all start their rotation on the same node.
    #[inline]
    pub fn next(&self) -> u64 {
        let shard = SHARD.with(Cell::get);
        self.lines[shard]
            .0
            .fetch_add(1, Relaxed)
            .wrapping_add(shard as u64)
    }

    /// The value [`RotationCounter::next`] would return on the calling thread, without
    /// drawing it (explain shows the answer the calling thread's next query would get).
    #[inline]
    pub fn peek(&self) -> u64 {
        let shard = SHARD.with(Cell::get);
        self.lines[shard].0.load(Relaxed).wrapping_add(shard as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_steps_by_one_on_its_own_line() {
        let c = RotationCounter::default();
        assert_eq!((c.next(), c.next(), c.next()), (0, 1, 2));
        std::thread::scope(|s| {
            s.spawn(|| {
                set_rotation_shard(0);
                assert_eq!((c.next(), c.next()), (1, 2));
            });
        });
        // The unannounced thread's sequence is not disturbed.
        assert_eq!(c.next(), 3);
    }
}
