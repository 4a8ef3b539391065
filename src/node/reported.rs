//! The weight a node reports about itself (least load, agent-check style), packed into one
//! atomic word so the answer path reads it lock-free.

/// A weight a node reported about itself (least load, agent-check style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reported {
    /// Use this weight instead of the configured one.
    Weight(u32),
    /// Use this percentage of the configured weight.
    Percent(u32),
}

/// Encoding of `Reported` in one `AtomicU32`.
pub(super) const NO_REPORT: u32 = u32::MAX;
const PERCENT_FLAG: u32 = 1 << 31;

impl Reported {
    pub(super) fn encode(r: Option<Reported>) -> u32 {
        match r {
            None => NO_REPORT,
            Some(Reported::Weight(w)) => w.min(PERCENT_FLAG - 1),
            Some(Reported::Percent(p)) => PERCENT_FLAG | p.min(PERCENT_FLAG - 2),
        }
    }

    pub(super) fn decode(v: u32) -> Option<Reported> {
        if v == NO_REPORT {
            None
        } else if v & PERCENT_FLAG != 0 {
            Some(Reported::Percent(v & !PERCENT_FLAG))
        } else {
            Some(Reported::Weight(v))
        }
    }

    /// The weight to use for a node configured with `configured`.
    pub fn apply(self, configured: u32) -> u32 {
        match self {
            Reported::Weight(w) => w,
            // Round up so that a small percentage of a small weight does not become 0:
            // only an explicit 0 takes a node out.
            Reported::Percent(p) => (configured as u64 * p as u64).div_ceil(100) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_weights_encode_and_apply() {
        for r in [
            None,
            Some(Reported::Weight(0)),
            Some(Reported::Weight(7)),
            Some(Reported::Percent(50)),
        ] {
            assert_eq!(Reported::decode(Reported::encode(r)), r);
        }
        assert_eq!(Reported::Percent(50).apply(3), 2);
        assert_eq!(Reported::Percent(1).apply(1), 1);
        assert_eq!(Reported::Percent(0).apply(5), 0);
        assert_eq!(Reported::Weight(9).apply(1), 9);
    }
}
