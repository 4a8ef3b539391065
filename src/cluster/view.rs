//! One view: every instance derives each node's state from the same fresh observations
//! with the same rule, and writes it into the node state the answer path reads.
//!
//! *Fresh* means received (or refreshed) within `lease_ttl + interval` on this
//! instance's own clock: observers rewrite their verdict on every change and at least
//! every `lease_ttl / 2` while they keep checking, so a live observer is always fresh and
//! a stuck one goes stale within that window. Observations of members whose lease
//! expired are gone with the lease.
//!
//! Rules over the fresh observations of a node:
//! * `quorum`: down when a strict majority say down, up when a strict majority say up;
//!   otherwise (a tie, or none fresh) the last state stays;
//! * `any-up`: up when any says up, down when all say down;
//! * `all-up`: down when any says down, up when all say up.
//!
//! The served RTT (for `fastest`) is the median of the smoothed RTTs of the fresh
//! observers that say up; the reported weight is the one of the first such observer by
//! member name, so every instance picks the same.

use std::time::{Duration, Instant};

use super::Cluster;
use super::config::HealthRule;
use super::keys::{Observation, probe_id};
use super::mode::Mode;
use crate::node::{Health, Reported};
use crate::pool::CheckKind;

/// How often the view is re-derived even without news (freshness runs out with time).
pub const DERIVE_TICK: Duration = Duration::from_millis(100);

/// The state the rule gives, or `None` to keep the last one.
pub fn decide(rule: HealthRule, votes: &[bool]) -> Option<Health> {
    let n = votes.len();
    if n == 0 {
        return None;
    }
    let up = votes.iter().filter(|v| **v).count();
    let down = n - up;
    let h = |up: bool| Some(if up { Health::Up } else { Health::Down });
    match rule {
        HealthRule::Quorum if down * 2 > n => h(false),
        HealthRule::Quorum if up * 2 > n => h(true),
        HealthRule::Quorum => None,
        HealthRule::AnyUp => h(up > 0),
        HealthRule::AllUp => h(down == 0),
    }
}

/// The median of `v` (the lower middle for an even count).
pub fn median(mut v: Vec<u64>) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[(v.len() - 1) / 2])
}

/// How long an observation counts as fresh after it was received.
pub fn fresh_window(lease_ttl: Duration, interval: Duration) -> Duration {
    lease_ttl + interval
}

fn parse_reported(s: &str) -> Option<Reported> {
    crate::health::probe::parse_weight(s)
}

/// Re-derives every node's served state from the observations.
pub(crate) fn derive(c: &Cluster) {
    if matches!(c.mode.get(), Mode::Fallback | Mode::Joining) || c.frozen() {
        return;
    }
    let handles = c.handles();
    let now = Instant::now();
    let st = c.lock();
    for (key, health) in handles {
        if key.check.kind == CheckKind::None {
            continue;
        }
        let id = probe_id(&key);
        let Some(all) = st.obs.get(&id) else { continue };
        let window = fresh_window(c.cfg.lease_ttl, key.check.interval);
        let fresh: Vec<(&String, &Observation)> = all
            .iter()
            .filter(|(m, r)| now.duration_since(r.at) <= window && st.members.contains_key(*m))
            .map(|(m, r)| (m, &r.obs))
            .collect();
        let votes: Vec<bool> = fresh.iter().map(|(_, o)| o.state == "up").collect();
        let ups: Vec<&Observation> = fresh
            .iter()
            .filter(|(_, o)| o.state == "up")
            .map(|(_, o)| *o)
            .collect();
        if let Some(m) = median(ups.iter().filter_map(|o| o.srtt_us).collect()) {
            health.set_srtt(Duration::from_micros(m));
        }
        if let Some(first) = ups.first() {
            health.set_reported(first.reported.as_deref().and_then(parse_reported));
        }
        let Some(to) = decide(c.cfg.health_rule, &votes) else {
            continue;
        };
        let from = health.health();
        if from != to {
            let came_back = (from == Health::Down && to == Health::Up).then(Instant::now);
            health.set_health(to, came_back);
            let says: Vec<String> = fresh
                .iter()
                .map(|(m, o)| format!("{m}={}", o.state))
                .collect();
            let pools = health.with_detail(|d| d.users.join(","));
            let reason = format!(
                "cluster rule {}: {}",
                c.cfg.health_rule.as_str(),
                says.join(",")
            );
            crate::health::change_log::health_changed(&key, &pools, from, to, &reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        use HealthRule::*;
        let (u, d) = (Some(Health::Up), Some(Health::Down));
        assert_eq!(decide(Quorum, &[]), None);
        assert_eq!(
            decide(Quorum, &[true, true, false]),
            u,
            "one partitioned checker is outvoted"
        );
        assert_eq!(decide(Quorum, &[false, false, true]), d);
        assert_eq!(
            decide(Quorum, &[true, false]),
            None,
            "a tie keeps the last state"
        );
        assert_eq!(decide(Quorum, &[false]), d);
        assert_eq!(decide(AnyUp, &[false, true, false]), u);
        assert_eq!(decide(AnyUp, &[false, false]), d);
        assert_eq!(decide(AllUp, &[true, true, false]), d);
        assert_eq!(decide(AllUp, &[true, true]), u);
        assert_eq!(decide(AllUp, &[]), None);
        assert_eq!(median(vec![30, 10, 20]), Some(20));
        assert_eq!(median(vec![40, 10, 20, 30]), Some(20));
        assert_eq!(median(vec![]), None);
    }
}
