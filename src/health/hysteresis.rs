//! The `rise` / `fall` state machine that turns check results into up and down.

use crate::node::Health;

/// The `rise` / `fall` state machine of one target.
///
/// The first result decides the state at once (so the first answer after start is
/// already right, as with gdnsd); after that it takes `rise` consecutive successes to
/// come up and `fall` consecutive failures to go down.
#[derive(Debug, Clone)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    up: Option<bool>,
    ok_run: u32,
    fail_run: u32,
}

impl Hysteresis {
    /// A machine with no result yet.
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            up: None,
            ok_run: 0,
            fail_run: 0,
        }
    }

    /// A machine that continues from `current`, the state a previous check of the same
    /// target decided: a known state is not decided again by one result, so `rise` and
    /// `fall` apply from the first result on (a node coming back up then gets its slow
    /// start). With `Unknown` it is [`Hysteresis::new`].
    pub fn resume(rise: u32, fall: u32, current: Health) -> Self {
        let mut m = Self::new(rise, fall);
        m.up = match current {
            Health::Unknown => None,
            Health::Up => Some(true),
            Health::Down => Some(false),
        };
        m
    }

    /// Records one result; returns `(from, to)` when the state changes.
    pub fn record(&mut self, ok: bool) -> Option<(Health, Health)> {
        if ok {
            self.ok_run = self.ok_run.saturating_add(1);
            self.fail_run = 0;
        } else {
            self.fail_run = self.fail_run.saturating_add(1);
            self.ok_run = 0;
        }
        let from = self.health();
        let to_up = match self.up {
            None => ok,
            Some(false) => self.ok_run >= self.rise,
            Some(true) => self.fail_run < self.fall,
        };
        self.up = Some(to_up);
        let to = self.health();
        (from != to).then_some((from, to))
    }

    /// Current state.
    pub fn health(&self) -> Health {
        match self.up {
            None => Health::Unknown,
            Some(true) => Health::Up,
            Some(false) => Health::Down,
        }
    }

    /// (consecutive successes, consecutive failures).
    pub fn runs(&self) -> (u32, u32) {
        (self.ok_run, self.fail_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_result_decides_then_rise_and_fall_apply() {
        let mut h = Hysteresis::new(2, 3);
        assert_eq!(h.record(false), Some((Health::Unknown, Health::Down)));
        assert_eq!(h.record(true), None, "one success is not rise=2");
        assert_eq!(h.record(false), None, "the run restarts");
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some((Health::Down, Health::Up)));
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None, "a success resets the failure run");
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), Some((Health::Up, Health::Down)));

        let mut h = Hysteresis::new(2, 2);
        assert_eq!(h.record(true), Some((Health::Unknown, Health::Up)));

        // Resumed from a known state, one result decides nothing.
        let mut h = Hysteresis::resume(3, 2, Health::Down);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some((Health::Down, Health::Up)));
        let mut h = Hysteresis::resume(3, 2, Health::Up);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), Some((Health::Up, Health::Down)));
    }
}
