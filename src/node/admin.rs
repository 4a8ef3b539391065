//! Admin overrides of one pool node (ready / drain / maint, weight) and the drain
//! tracking behind "safe to stop": when the node was last served and until when that
//! answer may be cached.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Operator override of one node in one pool (HAProxy's `ready` / `drain` / `maint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminState {
    /// No override: health decides.
    Ready,
    /// Not handed out in new answers; still counted as configured (for planned removal).
    Drain,
    /// Out of service: not handed out, even when every node is down.
    Maint,
}

/// Admin override slots of one pool node. Survive zone reloads (keyed by pool name and
/// address in the monitor).
///
/// Also remembers when the node was last put into an answer and until when that answer
/// may be cached, so that the admin API can say when a drained node is safe to stop.
#[derive(Debug)]
pub struct NodeAdmin {
    state: AtomicU8,
    weight: AtomicU32,
    /// Milliseconds since the monitor's epoch, plus one, of the last answer naming the
    /// node (0: never), kept to [`SERVED_GRANULARITY_MS`].
    served_ms: AtomicU64,
    /// Milliseconds since the epoch until which some answer naming the node may still be
    /// cached: the largest (served time + TTL) seen, plus one (0: never).
    expires_ms: AtomicU64,
    /// Answers naming the node, counted for one answer in [`ANSWER_SAMPLE`] (the status
    /// page's share of answers; a count of every answer would bounce a cache line per
    /// answer between cores).
    sampled: AtomicU64,
}

/// One answer in this many (by the pool's query counter) is counted per node.
pub const ANSWER_SAMPLE: u64 = 64;

/// Resolution of the last-served time: the answer path stores at most once per this many
/// milliseconds per node, so steady traffic does not keep a cache line bouncing between
/// cores. The admin API adds it to expiry times, which keeps them on the safe side.
pub const SERVED_GRANULARITY_MS: u64 = 100;

impl Default for NodeAdmin {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(0),
            weight: AtomicU32::new(u32::MAX),
            served_ms: AtomicU64::new(0),
            expires_ms: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
        }
    }
}

impl NodeAdmin {
    /// Current override (lock-free).
    #[inline]
    pub fn state(&self) -> AdminState {
        match self.state.load(Relaxed) {
            1 => AdminState::Drain,
            2 => AdminState::Maint,
            _ => AdminState::Ready,
        }
    }

    /// Sets the override.
    pub fn set_state(&self, s: AdminState) {
        let v = match s {
            AdminState::Ready => 0,
            AdminState::Drain => 1,
            AdminState::Maint => 2,
        };
        if self.state.swap(v, Relaxed) != v {
            super::memo::state_changed();
        }
    }

    /// Weight override, if any (lock-free). Takes precedence over configured and reported
    /// weights; 0 takes the node out.
    #[inline]
    pub fn weight(&self) -> Option<u32> {
        match self.weight.load(Relaxed) {
            u32::MAX => None,
            w => Some(w),
        }
    }

    /// Sets or clears the weight override.
    pub fn set_weight(&self, w: Option<u32>) {
        let v = w.map_or(u32::MAX, |w| w.min(u32::MAX - 1));
        if self.weight.swap(v, Relaxed) != v {
            super::memo::state_changed();
        }
    }

    /// Notes that the node was put into an answer with `ttl`, `now_ms` milliseconds after
    /// the monitor's epoch (the answer path: two relaxed loads, and atomic maxima at most once per
    /// [`SERVED_GRANULARITY_MS`] or when the expiry moves by more than that).
    #[inline]
    pub fn note_served(&self, now_ms: u64, ttl: u32) {
        let served = now_ms + 1;
        let expires = served + ttl as u64 * 1000;
        // 0 means "never": the first serve is always recorded, even within the first
        // granule after start.
        // The loads keep steady traffic from writing the line; the writes are atomic
        // maxima, so two workers racing with different TTLs (or clocks a little apart)
        // can never move either time backwards.
        let last = self.served_ms.load(Relaxed);
        if last == 0 || served >= last + SERVED_GRANULARITY_MS {
            self.served_ms.fetch_max(served, Relaxed);
        }
        let last = self.expires_ms.load(Relaxed);
        if last == 0 || expires >= last + SERVED_GRANULARITY_MS {
            self.expires_ms.fetch_max(expires, Relaxed);
        }
    }

    /// Counts a sampled answer naming the node (see [`ANSWER_SAMPLE`]).
    #[inline]
    pub fn note_sampled(&self) {
        self.sampled.fetch_add(1, Relaxed);
    }

    /// Sampled answers naming the node so far (times [`ANSWER_SAMPLE`]: an estimate of all).
    pub fn sampled(&self) -> u64 {
        self.sampled.load(Relaxed)
    }

    /// When the node was last put into an answer, if ever (to within
    /// [`SERVED_GRANULARITY_MS`]), as an offset from the monitor's epoch.
    pub fn last_served(&self) -> Option<Duration> {
        match self.served_ms.load(Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms - 1)),
        }
    }

    /// Until when an answer naming the node may still sit in a resolver cache, as an offset
    /// from the monitor's epoch, rounded up by [`SERVED_GRANULARITY_MS`]; `None` if it has
    /// never been served.
    pub fn cached_until(&self) -> Option<Duration> {
        match self.expires_ms.load(Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms - 1 + SERVED_GRANULARITY_MS)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_slots() {
        let a = NodeAdmin::default();
        assert_eq!((a.state(), a.weight()), (AdminState::Ready, None));
        a.set_state(AdminState::Drain);
        a.set_weight(Some(0));
        assert_eq!((a.state(), a.weight()), (AdminState::Drain, Some(0)));
        a.set_weight(None);
        assert_eq!(a.weight(), None);
    }

    #[test]
    fn served_times_are_coarse_and_expiry_never_moves_back() {
        let a = NodeAdmin::default();
        assert_eq!((a.last_served(), a.cached_until()), (None, None));
        a.note_served(1_000, 20);
        assert_eq!(a.last_served(), Some(Duration::from_millis(1_000)));
        let until = Duration::from_millis(21_000 + SERVED_GRANULARITY_MS);
        assert_eq!(a.cached_until(), Some(until));
        // Within the granularity: not stored again.
        a.note_served(1_050, 20);
        assert_eq!(a.last_served(), Some(Duration::from_millis(1_000)));
        // A later answer with a shorter (degraded) TTL does not shorten the expiry.
        a.note_served(2_000, 5);
        assert_eq!(a.last_served(), Some(Duration::from_millis(2_000)));
        assert_eq!(a.cached_until(), Some(until));
        a.note_served(3_000, 20);
        assert_eq!(
            a.cached_until(),
            Some(Duration::from_millis(23_000 + SERVED_GRANULARITY_MS))
        );
    }

    /// Two workers answering at once with different TTLs: whichever stores last, the
    /// expiry must be the later one, or "safe to stop" turns true too early. The threads
    /// meet at a spin barrier before each round so that their calls overlap.
    #[test]
    fn concurrent_serves_never_move_the_expiry_back() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        const ROUNDS: u64 = 100_000;
        let a = Arc::new(NodeAdmin::default());
        let arrived = Arc::new(AtomicU64::new(0));
        let backwards = Arc::new(AtomicBool::new(false));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let threads: Vec<_> = [300u32, 5]
            .into_iter()
            .map(|ttl| {
                let (a, arrived, backwards) = (a.clone(), arrived.clone(), backwards.clone());
                std::thread::spawn(move || {
                    for round in 0..ROUNDS {
                        arrived.fetch_add(1, Relaxed);
                        while arrived.load(Relaxed) < 2 * (round + 1) {
                            if std::time::Instant::now() > deadline {
                                return;
                            }
                            std::hint::spin_loop();
                        }
                        // Rounds a long way apart, so both calls of a round pass the
                        // granularity test against the previous round's expiry.
                        let now = round * 1_000_000;
                        a.note_served(now, ttl);
                        let own = Duration::from_millis(now + u64::from(ttl) * 1000);
                        if a.cached_until().is_none_or(|c| c < own) {
                            backwards.store(true, Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // On a very busy machine the deadline may cut the rounds short; enough must run
        // for the test to mean something.
        assert!(
            arrived.load(Relaxed) >= 2 * 1_000,
            "too few rounds ran before the deadline"
        );
        assert!(
            !backwards.load(Relaxed),
            "a shorter TTL overwrote a longer one: the expiry moved back"
        );
    }

    #[test]
    fn a_node_served_right_after_start_is_recorded() {
        let a = NodeAdmin::default();
        a.note_served(0, 20);
        assert_eq!(a.last_served(), Some(Duration::ZERO));
        assert_eq!(
            a.cached_until(),
            Some(Duration::from_millis(20_000 + SERVED_GRANULARITY_MS))
        );
    }
}
