//! How a pool is answering right now: normal, degraded, failing over, or all down and
//! what its `all_down` mode then hands out.
//!
//! "0/3 serving" hides that a `serve-all` pool is handing out dead addresses. The state is
//! computed off the query path by running the same selection the answer path runs
//! ([`crate::policy::explain`], which does not count as serving) for each address family
//! the pool has nodes of; the worst family is the pool's state.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use serde::Serialize;

use crate::node::{Family, PoolRuntime};
use crate::policy::{ClientKey, SelectInput, explain};
use crate::pool::AllDown;

/// A pool's answering state, worst first when compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Every node of the answering tier is up.
    Normal,
    /// Some node is down (answers carry the degraded TTL).
    Degraded,
    /// A later tier answers: the first tier lacks healthy nodes.
    Failover,
    /// No node is usable: the `all_down` mode decides.
    AllDown,
}

impl State {
    /// Every state, for metrics.
    pub const ALL: [State; 4] = [
        State::Normal,
        State::Degraded,
        State::Failover,
        State::AllDown,
    ];

    /// Its name in the API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Normal => "normal",
            State::Degraded => "degraded",
            State::Failover => "failover",
            State::AllDown => "all-down",
        }
    }
}

/// The answering state of one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answering {
    /// `normal`, `degraded`, `failover` or `all-down`.
    pub state: &'static str,
    /// For people: "failing over to tier 2", "all down: serving all (dead addresses)".
    pub detail: String,
    /// The TTL answers carry now.
    pub ttl: u32,
    /// The tier answering (absent when all down).
    pub tier: Option<u8>,
    /// With every node down, what the pool hands out: `serve-all`, `last-healthy`,
    /// `empty`, `servfail`.
    pub all_down_mode: Option<&'static str>,
    #[serde(skip)]
    /// The state as a value.
    pub value: State,
}

/// What `pool` answers now.
pub fn answering(pool: &PoolRuntime, now: Instant) -> Answering {
    let spec = pool.spec();
    let mut worst: Option<Answering> = None;
    for family in [Family::V4, Family::V6] {
        let nodes: Vec<_> = pool
            .nodes()
            .iter()
            .filter(|n| Family::of(n.spec.addr) == family)
            .collect();
        let Some(first_tier) = nodes.iter().map(|n| n.spec.tier).min() else {
            continue;
        };
        let input = SelectInput {
            counter: 0,
            family,
            client: ClientKey {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                prefix_len: 0,
                from_ecs: false,
            },
            now,
        };
        let sel = explain(pool, &input).selection;
        let (value, detail, tier, mode) = if sel.all_down {
            let mode = spec.all_down;
            let what = match mode {
                AllDown::ServeAll => "serving all (addresses of down nodes)",
                AllDown::LastHealthy => "serving the last healthy set (addresses of down nodes)",
                AllDown::Empty => "answering empty (NOERROR, no address)",
                AllDown::ServFail => "answering SERVFAIL",
            };
            (
                State::AllDown,
                format!("all down: {what}"),
                None,
                Some(mode.as_str()),
            )
        } else if sel.tier > first_tier {
            (
                State::Failover,
                format!("failing over to tier {}", sel.tier),
                Some(sel.tier),
                None,
            )
        } else if sel.degraded {
            (
                State::Degraded,
                "degraded: some nodes down".to_string(),
                Some(sel.tier),
                None,
            )
        } else {
            (State::Normal, "normal".to_string(), Some(sel.tier), None)
        };
        let a = Answering {
            state: value.as_str(),
            detail,
            ttl: sel.ttl,
            tier,
            all_down_mode: mode,
            value,
        };
        if worst.as_ref().is_none_or(|w| a.value > w.value) {
            worst = Some(a);
        }
    }
    worst.unwrap_or(Answering {
        state: State::Normal.as_str(),
        detail: "normal".into(),
        ttl: spec.ttl,
        tier: None,
        all_down_mode: None,
        value: State::Normal,
    })
}
