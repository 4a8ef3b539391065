//! Policy unit tests: distributions over many answers, stickiness, tiers, all-down modes,
//! slow start, degraded TTL and explain verdicts. Node state is set directly (the probes
//! have their own integration tests).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::Name;

use super::*;
use crate::node::{AdminState, Health, NodeAdmin, NodeHealth, PoolRuntime, Reported};
use crate::pool::spec::DEFAULT_MIN_HEALTHY;
use crate::pool::{
    AllDown, CheckKind, CheckSpec, MinHealthy, NodeSpec, Policy, PoolSpec, ProbeTarget,
};

/// A node: address, weight, tier.
pub(super) struct N(pub &'static str, pub u32, pub u8);

/// A pool of `nodes` with `policy` and the defaults the tests start from.
pub(super) fn spec(policy: Policy, nodes: &[N]) -> PoolSpec {
    PoolSpec {
        name: Name::from_ascii("web.example.com.").unwrap(),
        key: "web".into(),
        ttl: 20,
        degraded_ttl: 10,
        policy,
        max_answers: 8,
        min_healthy: DEFAULT_MIN_HEALTHY,
        all_down: AllDown::ServeAll,
        slow_start: None,
        check: Arc::new(CheckSpec {
            kind: CheckKind::None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(100),
            rise: 1,
            fall: 1,
        }),
        nodes: nodes
            .iter()
            .map(|n| {
                let addr: IpAddr = n.0.parse().unwrap();
                NodeSpec {
                    addr,
                    label: n.0.into(),
                    weight: n.1,
                    tier: n.2,
                    maint: false,
                    probe: ProbeTarget {
                        addr,
                        port: 0,
                        host: None,
                    },
                }
            })
            .collect(),
    }
}

pub(super) fn runtime(spec: PoolSpec) -> PoolRuntime {
    let epoch = Instant::now();
    let n = spec.nodes.len();
    let health: Vec<_> = (0..n)
        .map(|_| {
            let h = Arc::new(NodeHealth::new(epoch));
            h.force(Health::Up, None, None);
            h
        })
        .collect();
    let admin = (0..n).map(|_| Arc::new(NodeAdmin::default())).collect();
    PoolRuntime::new(spec, health, admin)
}

fn pool(policy: Policy, nodes: &[N]) -> PoolRuntime {
    runtime(spec(policy, nodes))
}

fn four() -> [N; 4] {
    [
        N("192.0.2.1", 1, 1),
        N("192.0.2.2", 1, 1),
        N("192.0.2.3", 1, 1),
        N("192.0.2.4", 1, 1),
    ]
}

fn set(p: &PoolRuntime, i: usize, h: Health) {
    p.nodes()[i].health.force(h, None, None);
}

fn client(a: &str) -> ClientKey {
    ClientKey {
        addr: a.parse().unwrap(),
        prefix_len: 0,
        from_ecs: false,
    }
}

pub(super) fn input(counter: u64) -> SelectInput {
    SelectInput {
        counter,
        family: Family::V4,
        client: client("198.51.100.7"),
        now: Instant::now(),
    }
}

fn run(p: &PoolRuntime, inp: &SelectInput) -> Selection {
    let mut s = Selection::default();
    select(p, inp, &mut s);
    // explain must agree with select, always.
    assert_eq!(explain(p, inp).selection, s);
    s
}

fn first_counts(p: &PoolRuntime, answers: u64) -> HashMap<u8, u64> {
    let mut c = HashMap::new();
    for i in 0..answers {
        let s = run(p, &input(i));
        *c.entry(s.nodes()[0]).or_default() += 1;
    }
    c
}

#[test]
fn round_robin_rotates_and_is_even() {
    let p = pool(Policy::RoundRobin, &four());
    let a = run(&p, &input(0));
    let b = run(&p, &input(1));
    assert_eq!(a.nodes(), [0, 1, 2, 3]);
    assert_eq!(b.nodes(), [1, 2, 3, 0], "order rotates by one per answer");
    assert_eq!(
        (a.outcome, a.ttl, a.degraded, a.tier, a.scope_prefix),
        (Outcome::Answer, 20, false, 1, 0)
    );
    let c = first_counts(&p, 4000);
    assert!(c.values().all(|&v| v == 1000), "{c:?}");
}

#[test]
fn round_robin_with_max_answers_spreads_every_node_evenly() {
    let mut s = spec(Policy::RoundRobin, &four());
    s.max_answers = 2;
    let p = runtime(s);
    let mut inset = [0u32; 4];
    for i in 0..4000 {
        let s = run(&p, &input(i));
        assert_eq!(s.nodes().len(), 2);
        for &n in s.nodes() {
            inset[n as usize] += 1;
        }
    }
    assert_eq!(inset, [2000; 4]);
}

#[test]
fn healthy_only_and_degraded_ttl() {
    let p = pool(Policy::RoundRobin, &four());
    set(&p, 1, Health::Down);
    for i in 0..8 {
        let s = run(&p, &input(i));
        assert_eq!(s.nodes().len(), 3);
        assert!(!s.nodes().contains(&1));
        assert!(s.degraded);
        assert_eq!(s.ttl, 10, "degraded_ttl while a node is down");
    }
    set(&p, 1, Health::Up);
    let s = run(&p, &input(0));
    assert_eq!((s.ttl, s.degraded), (20, false));
    // A node with no result yet counts as down.
    set(&p, 2, Health::Unknown);
    assert!(!run(&p, &input(0)).nodes().contains(&2));
}

#[test]
fn families_are_separate() {
    let p = pool(
        Policy::RoundRobin,
        &[
            N("192.0.2.1", 1, 1),
            N("2001:db8::1", 1, 1),
            N("2001:db8::2", 1, 1),
        ],
    );
    let mut inp = input(0);
    assert_eq!(run(&p, &inp).nodes(), [0]);
    inp.family = Family::V6;
    assert_eq!(run(&p, &inp).nodes(), [1, 2]);
    // A v6 node down degrades AAAA answers only.
    set(&p, 2, Health::Down);
    assert!(run(&p, &inp).degraded);
    inp.family = Family::V4;
    assert!(!run(&p, &inp).degraded);
    // A family with no node at all: NODATA, not "all down".
    let v6only = pool(Policy::RoundRobin, &[N("2001:db8::1", 1, 1)]);
    let s = run(&v6only, &input(0));
    assert_eq!(
        (s.outcome, s.all_down, s.nodes().len()),
        (Outcome::Empty, false, 0)
    );
}

#[test]
fn weighted_first_position_shares_follow_weights() {
    let p = pool(
        Policy::Weighted,
        &[
            N("192.0.2.1", 1, 1),
            N("192.0.2.2", 2, 1),
            N("192.0.2.3", 3, 1),
            N("192.0.2.4", 4, 1),
        ],
    );
    let total = 10_000u64;
    let c = first_counts(&p, total);
    for (i, w) in [1u64, 2, 3, 4].into_iter().enumerate() {
        let got = *c.get(&(i as u8)).unwrap_or(&0) as f64 / total as f64;
        let want = w as f64 / 10.0;
        assert!((got - want).abs() < 0.01, "node {i}: {got} vs {want}");
    }
    // Every answer still carries every healthy node.
    assert_eq!(run(&p, &input(3)).nodes().len(), 4);
}

#[test]
fn weighted_is_smooth_over_short_windows() {
    // 3:1 — in any 8 consecutive answers the heavy node is first 6 times, give or take 1.
    let p = pool(
        Policy::Weighted,
        &[N("192.0.2.1", 3, 1), N("192.0.2.2", 1, 1)],
    );
    for start in 0..200 {
        let heavy = (start..start + 8)
            .filter(|&i| run(&p, &input(i)).nodes()[0] == 0)
            .count();
        assert!((5..=7).contains(&heavy), "window at {start}: {heavy}");
    }
}

#[test]
fn weighted_answer_set_shares_follow_weights_when_cut() {
    let mut s = spec(
        Policy::Weighted,
        &[
            N("192.0.2.1", 1, 1),
            N("192.0.2.2", 1, 1),
            N("192.0.2.3", 2, 1),
            N("192.0.2.4", 4, 1),
        ],
    );
    s.max_answers = 2;
    let p = runtime(s);
    let total = 8000;
    let mut inset = [0u32; 4];
    for i in 0..total {
        let s = run(&p, &input(i));
        assert_eq!(s.nodes().len(), 2);
        assert_ne!(s.nodes()[0], s.nodes()[1]);
        for &n in s.nodes() {
            inset[n as usize] += 1;
        }
    }
    // Inclusion probability = k·w/W capped at 1: 0.25, 0.25, 0.5, 1.
    let want = [0.25, 0.25, 0.5, 1.0];
    for i in 0..4 {
        let got = inset[i] as f64 / total as f64;
        assert!(
            (got - want[i]).abs() < 0.02,
            "node {i}: {got} vs {}",
            want[i]
        );
    }
}

#[test]
fn reported_and_admin_weights_drive_weighted_and_zero_takes_out() {
    let p = pool(
        Policy::Weighted,
        &[N("192.0.2.1", 1, 1), N("192.0.2.2", 1, 1)],
    );
    p.nodes()[0]
        .health
        .force_reported(Some(Reported::Weight(3)));
    let c = first_counts(&p, 4000);
    let share = c[&0] as f64 / 4000.0;
    assert!((share - 0.75).abs() < 0.01, "{share}");
    // 0 reported: out of answers although up.
    p.nodes()[1]
        .health
        .force_reported(Some(Reported::Weight(0)));
    let s = run(&p, &input(0));
    assert_eq!(s.nodes(), [0]);
    assert_eq!(explain(&p, &input(0)).verdicts[1], Verdict::WeightZero);
    // Admin weight beats the reported one.
    p.nodes()[1].admin.set_weight(Some(1));
    p.nodes()[0].admin.set_weight(Some(1));
    let c = first_counts(&p, 4000);
    assert_eq!(c[&0] + c[&1], 4000);
    assert!((c[&0] as f64 / 4000.0 - 0.5).abs() < 0.01);
}

fn clients(n: u32) -> impl Iterator<Item = ClientKey> {
    (0..n).map(|i| ClientKey {
        addr: IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + (i << 8))),
        prefix_len: 0,
        from_ecs: false,
    })
}

fn first_for(p: &PoolRuntime, c: ClientKey, counter: u64) -> u8 {
    let mut inp = input(counter);
    inp.client = c;
    run(p, &inp).nodes()[0]
}

#[test]
fn client_hash_is_sticky_and_spreads() {
    let p = pool(Policy::ClientHash, &four());
    let mut per_node = [0u32; 4];
    for c in clients(2000) {
        let a = first_for(&p, c, 0);
        for counter in [1, 7, 1000] {
            assert_eq!(first_for(&p, c, counter), a, "same client, same node");
        }
        per_node[a as usize] += 1;
    }
    for n in per_node {
        assert!((400..=600).contains(&n), "{per_node:?}");
    }
    // Same /24, same node; the echo scope says /24.
    let mut inp = input(0);
    inp.client = client("10.1.2.3");
    let a = run(&p, &inp);
    inp.client = client("10.1.2.200");
    let b = run(&p, &inp);
    assert_eq!(a.nodes(), b.nodes());
    assert_eq!(a.scope_prefix, 24);
    inp.client = client("2001:db8:1:ff::1");
    assert_eq!(run(&p, &inp).scope_prefix, 56);
    // An IPv4 client seen through a dual-stack socket is the same client.
    inp.client = client("::ffff:10.1.2.3");
    let mapped = run(&p, &inp);
    assert_eq!((mapped.nodes(), mapped.scope_prefix), (a.nodes(), 24));
}

#[test]
fn client_hash_moves_only_a_dead_nodes_clients_and_moves_them_back() {
    let p = pool(Policy::ClientHash, &four());
    let before: Vec<u8> = clients(2000).map(|c| first_for(&p, c, 0)).collect();
    set(&p, 2, Health::Down);
    let during: Vec<u8> = clients(2000).map(|c| first_for(&p, c, 0)).collect();
    for (b, d) in before.iter().zip(&during) {
        if *b == 2 {
            assert_ne!(*d, 2);
        } else {
            assert_eq!(b, d, "a client of a live node must not move");
        }
    }
    // The dead node's clients spread over the others rather than piling on one.
    let mut moved = [0u32; 4];
    for (b, d) in before.iter().zip(&during) {
        if *b == 2 {
            moved[*d as usize] += 1;
        }
    }
    assert!(moved.iter().filter(|&&m| m > 0).count() == 3, "{moved:?}");
    set(&p, 2, Health::Up);
    let after: Vec<u8> = clients(2000).map(|c| first_for(&p, c, 0)).collect();
    assert_eq!(before, after, "everyone moves back");
}

#[test]
fn client_hash_uses_ecs_prefix_up_to_the_cap() {
    let p = pool(Policy::ClientHash, &four());
    let mut inp = input(0);
    inp.client = ClientKey {
        addr: "203.0.113.0".parse().unwrap(),
        prefix_len: 20,
        from_ecs: true,
    };
    let a = run(&p, &inp);
    assert_eq!(a.scope_prefix, 20);
    // Same /20, other /24: same answer under ECS /20.
    inp.client.addr = "203.0.120.0".parse().unwrap();
    assert_eq!(run(&p, &inp).nodes(), a.nodes());
    // A /32 ECS subnet is cut to /24.
    inp.client = ClientKey {
        addr: "203.0.113.9".parse().unwrap(),
        prefix_len: 32,
        from_ecs: true,
    };
    assert_eq!(run(&p, &inp).scope_prefix, 24);
    // Scope 0 for policies whose answer does not depend on the client.
    let rr = pool(Policy::RoundRobin, &four());
    assert_eq!(run(&rr, &inp).scope_prefix, 0);
}

#[test]
fn client_hash_respects_weights() {
    let p = pool(
        Policy::ClientHash,
        &[N("192.0.2.1", 1, 1), N("192.0.2.2", 3, 1)],
    );
    let heavy = clients(4000).filter(|&c| first_for(&p, c, 0) == 1).count();
    let share = heavy as f64 / 4000.0;
    assert!((share - 0.75).abs() < 0.03, "{share}");
}

#[test]
fn fastest_orders_by_smoothed_rtt() {
    let p = pool(Policy::Fastest, &four());
    for (i, ms) in [(0, 40), (1, 5), (2, 90), (3, 20)] {
        p.nodes()[i]
            .health
            .force(Health::Up, None, Some(Duration::from_millis(ms)));
    }
    for c in 0..5 {
        assert_eq!(run(&p, &input(c)).nodes(), [1, 3, 0, 2]);
    }
    set(&p, 1, Health::Down);
    assert_eq!(run(&p, &input(0)).nodes(), [3, 0, 2]);
}

#[test]
fn tiers_fail_over_by_min_healthy_and_come_back() {
    let mut s = spec(
        Policy::RoundRobin,
        &[
            N("192.0.2.1", 1, 1),
            N("192.0.2.2", 1, 1),
            N("192.0.2.3", 1, 2),
            N("192.0.2.4", 1, 5),
        ],
    );
    s.min_healthy = MinHealthy::Count(2);
    let p = runtime(s);
    let a = run(&p, &input(0));
    assert_eq!((a.nodes(), a.tier), (&[0u8, 1][..], 1));
    set(&p, 0, Health::Down);
    let b = run(&p, &input(0));
    assert_eq!(
        (b.nodes(), b.tier),
        (&[2u8][..], 2),
        "tier 1 below min_healthy"
    );
    assert!(b.degraded);
    let ex = explain(&p, &input(0));
    assert_eq!(ex.verdicts[1], Verdict::OtherTier { tier: 1 });
    assert_eq!(ex.verdicts[3], Verdict::OtherTier { tier: 5 });
    set(&p, 2, Health::Down);
    assert_eq!(run(&p, &input(0)).tier, 5, "gaps between tiers are fine");
    set(&p, 3, Health::Down);
    // No tier reaches min_healthy: the first tier with anything up answers.
    let c = run(&p, &input(0));
    assert_eq!((c.nodes(), c.tier, c.all_down), (&[1u8][..], 1, false));
    set(&p, 0, Health::Up);
    assert_eq!(run(&p, &input(0)).tier, 1);
}

#[test]
fn min_healthy_fraction() {
    let mut s = spec(
        Policy::RoundRobin,
        &[
            N("192.0.2.1", 1, 1),
            N("192.0.2.2", 1, 1),
            N("192.0.2.3", 1, 1),
            N("192.0.2.4", 1, 2),
        ],
    );
    s.min_healthy = MinHealthy::Permille(500);
    let p = runtime(s);
    set(&p, 0, Health::Down);
    assert_eq!(run(&p, &input(0)).tier, 1, "2 of 3 >= 50%");
    set(&p, 1, Health::Down);
    assert_eq!(run(&p, &input(0)).tier, 2, "1 of 3 < 50%");
}

fn all_down_pool(mode: AllDown) -> PoolRuntime {
    let mut s = spec(Policy::RoundRobin, &four());
    s.all_down = mode;
    runtime(s)
}

#[test]
fn all_down_serve_all_fails_open_but_not_for_maint() {
    let p = all_down_pool(AllDown::ServeAll);
    p.nodes()[3].admin.set_state(AdminState::Maint);
    for i in 0..4 {
        set(&p, i, Health::Down);
    }
    let s = run(&p, &input(0));
    assert_eq!(
        (s.outcome, s.all_down, s.degraded, s.ttl, s.tier),
        (Outcome::Answer, true, true, 10, 0)
    );
    let mut got = s.nodes().to_vec();
    got.sort();
    assert_eq!(got, [0, 1, 2]);
}

#[test]
fn all_down_empty_and_servfail() {
    for (mode, want) in [
        (AllDown::Empty, Outcome::Empty),
        (AllDown::ServFail, Outcome::ServFail),
    ] {
        let p = all_down_pool(mode);
        for i in 0..4 {
            set(&p, i, Health::Down);
        }
        let s = run(&p, &input(0));
        assert_eq!((s.outcome, s.nodes().len(), s.all_down), (want, 0, true));
        assert_eq!(explain(&p, &input(0)).verdicts[0], Verdict::AllDown);
    }
}

#[test]
fn all_down_last_healthy_serves_the_last_answered_set_without_flapping() {
    let p = all_down_pool(AllDown::LastHealthy);
    // Nothing answered yet: fail open.
    for i in 0..4 {
        set(&p, i, Health::Down);
    }
    assert_eq!(run(&p, &input(0)).nodes().len(), 4);
    // Healthy {1, 2} answered, then they fail too.
    set(&p, 1, Health::Up);
    set(&p, 2, Health::Up);
    assert_eq!(run(&p, &input(0)).nodes(), [1, 2]);
    set(&p, 2, Health::Down);
    assert_eq!(run(&p, &input(0)).nodes(), [1]);
    set(&p, 1, Health::Down);
    for c in 0..50 {
        let s = run(&p, &input(c));
        assert_eq!(s.nodes(), [1], "the last healthy set, every time");
        assert!(s.all_down);
    }
    let ex = explain(&p, &input(0));
    assert_eq!(ex.verdicts[0], Verdict::NotInLastHealthy);
    // Per family: v6 queries have their own memory.
    let mut inp = input(0);
    inp.family = Family::V6;
    assert_eq!(run(&p, &inp).outcome, Outcome::Empty);
}

#[test]
fn drain_and_maint_are_not_handed_out() {
    let p = pool(Policy::RoundRobin, &four());
    p.nodes()[0].admin.set_state(AdminState::Drain);
    p.nodes()[1].admin.set_state(AdminState::Maint);
    let s = run(&p, &input(0));
    let mut got = s.nodes().to_vec();
    got.sort();
    assert_eq!(got, [2, 3]);
    assert!(!s.degraded, "admin states are not failures");
    let mut s = spec(Policy::RoundRobin, &four());
    s.nodes[3].maint = true;
    let p = runtime(s);
    assert!(!run(&p, &input(0)).nodes().contains(&3));
}

#[test]
fn slow_start_ramps_a_returning_node() {
    let mut s = spec(
        Policy::Weighted,
        &[N("192.0.2.1", 1, 1), N("192.0.2.2", 1, 1)],
    );
    s.slow_start = Some(Duration::from_secs(100));
    let p = runtime(s);
    let now = Instant::now();
    // Node 1 came back at `now`; 25 s into a 100 s ramp its weight is 1/4 of full.
    p.nodes()[1].health.force(Health::Up, Some(now), None);
    let share = |p: &PoolRuntime, now: Instant| {
        (0..8000)
            .filter(|&i| {
                let mut inp = input(i);
                inp.now = now;
                run(p, &inp).nodes()[0] == 1
            })
            .count() as f64
            / 8000.0
    };
    let s25 = share(&p, now + Duration::from_secs(25));
    assert!((s25 - 0.25 / 1.25).abs() < 0.02, "{s25}");
    let s75 = share(&p, now + Duration::from_secs(75));
    assert!((s75 - 0.75 / 1.75).abs() < 0.02, "{s75}");
    let full = share(&p, now + Duration::from_secs(100));
    assert!((full - 0.5).abs() < 0.01, "{full}");
}

#[test]
fn slow_start_thins_round_robin_answers() {
    let mut s = spec(Policy::RoundRobin, &four());
    s.slow_start = Some(Duration::from_secs(100));
    let p = runtime(s);
    let now = Instant::now();
    p.nodes()[0].health.force(Health::Up, Some(now), None);
    let mut inp = input(0);
    inp.now = now + Duration::from_secs(30);
    let mut with0 = 0;
    for c in 0..8000 {
        inp.counter = c;
        if run(&p, &inp).nodes().contains(&0) {
            with0 += 1;
        }
    }
    let share = with0 as f64 / 8000.0;
    assert!((share - 0.30).abs() < 0.03, "{share}");
    // Explain names the reason when it is left out.
    let skipped = (0..100).find(|&c| {
        inp.counter = c;
        explain(&p, &inp).verdicts[0] == Verdict::SlowStart
    });
    assert!(skipped.is_some());
}

#[test]
fn explain_gives_every_reason() {
    let mut s = spec(
        Policy::RoundRobin,
        &[
            N("192.0.2.1", 1, 1),   // 0 selected
            N("192.0.2.2", 1, 1),   // 1 down
            N("192.0.2.3", 1, 1),   // 2 drained
            N("192.0.2.4", 1, 1),   // 3 maint
            N("192.0.2.5", 1, 2),   // 4 other tier
            N("192.0.2.6", 1, 1),   // 5 weight 0
            N("2001:db8::1", 1, 1), // 6 other family
            N("192.0.2.7", 1, 1),   // 7 cut by max_answers
        ],
    );
    s.max_answers = 1;
    let p = runtime(s);
    set(&p, 1, Health::Down);
    p.nodes()[2].admin.set_state(AdminState::Drain);
    p.nodes()[3].admin.set_state(AdminState::Maint);
    p.nodes()[5]
        .health
        .force_reported(Some(Reported::Weight(0)));
    let ex = explain(&p, &input(0));
    assert_eq!(
        ex.verdicts,
        [
            Verdict::Selected { rank: 0 },
            Verdict::Down,
            Verdict::Drained,
            Verdict::Maint,
            Verdict::OtherTier { tier: 2 },
            Verdict::WeightZero,
            Verdict::OtherFamily,
            Verdict::CutByMaxAnswers,
        ]
    );
    assert_eq!(ex.selection.nodes(), [0]);
    let addrs: Vec<IpAddr> = ex.selection.addrs(&p).collect();
    assert_eq!(addrs, ["192.0.2.1".parse::<IpAddr>().unwrap()]);
}

/// explain is a pure decision: it draws no counter, records no serve and does not move
/// the last-healthy set, whatever it finds.
#[test]
fn explain_changes_no_state() {
    let p = pool(Policy::RoundRobin, &four());
    let ex = explain(&p, &input(0));
    assert_eq!(ex.selection.outcome, Outcome::Answer);
    assert_eq!(p.last_healthy(Family::V4), 0, "explain stored last-healthy");
    assert_eq!(p.peek_counter(), 0);
    for n in p.nodes() {
        assert_eq!(n.admin.last_served(), None, "explain recorded a serve");
    }
    // A real selection does all three (the counter is drawn by its caller).
    let mut s = Selection::default();
    select(&p, &input(p.next_counter()), &mut s);
    assert_eq!(p.last_healthy(Family::V4), 0b1111);
    assert!(p.nodes().iter().all(|n| n.admin.last_served().is_some()));
}
