//! The answer path's memo of a steady choice ([`select`]) against a fresh decision
//! ([`select_with`]), through random changes of every kind of node state the decision
//! reads, made with the same setters the health monitor and the admin API use.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::tests::{N, input, runtime, spec};
use super::*;
use crate::node::{AdminState, Health, Reported, state_epoch};
use crate::pool::MinHealthy;

const ADDRS: [&str; 12] = [
    "192.0.2.1",
    "192.0.2.2",
    "192.0.2.3",
    "192.0.2.4",
    "192.0.2.5",
    "192.0.2.6",
    "192.0.2.7",
    "192.0.2.8",
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8::3",
    "2001:db8::4",
];

fn random_pool(rng: &mut fastrand::Rng) -> PoolRuntime {
    let n = rng.usize(1..=ADDRS.len());
    let mut addrs = ADDRS;
    rng.shuffle(&mut addrs);
    let nodes: Vec<N> = addrs[..n]
        .iter()
        .map(|&a| N(a, rng.u32(0..4), rng.u8(1..4)))
        .collect();
    let policy = [
        Policy::RoundRobin,
        Policy::Weighted,
        Policy::ClientHash,
        Policy::Fastest,
    ][rng.usize(..4)];
    let mut s = spec(policy, &nodes);
    s.max_answers = rng.u8(1..9);
    s.min_healthy = if rng.bool() {
        MinHealthy::Count(rng.u32(1..4))
    } else {
        MinHealthy::Permille(rng.u16(1..1001))
    };
    s.all_down = [
        AllDown::ServeAll,
        AllDown::LastHealthy,
        AllDown::Empty,
        AllDown::ServFail,
    ][rng.usize(..4)];
    if rng.u8(..4) == 0 {
        s.slow_start = Some(Duration::from_secs(30));
    }
    if rng.u8(..8) == 0 {
        let i = rng.usize(..n);
        s.nodes[i].maint = true;
    }
    runtime(s)
}

/// One random change through the setters probes and operators use, or none.
fn mutate(rng: &mut fastrand::Rng, p: &PoolRuntime, now: Instant) {
    let node = &p.nodes()[rng.usize(..p.nodes().len())];
    match rng.u8(..6) {
        0 => {
            let h = [Health::Up, Health::Down, Health::Unknown][rng.usize(..3)];
            // Sometimes a node that comes back, which starts a slow start when set.
            let back = (h == Health::Up && rng.bool())
                .then(|| now.checked_sub(Duration::from_secs(rng.u64(..60))))
                .flatten();
            node.health.set_health(h, back);
        }
        1 => node.health.set_reported(match rng.u8(..3) {
            0 => None,
            1 => Some(Reported::Weight(rng.u32(..3))),
            _ => Some(Reported::Percent(rng.u32(..101))),
        }),
        2 => node
            .admin
            .set_state([AdminState::Ready, AdminState::Drain, AdminState::Maint][rng.usize(..3)]),
        3 => node.admin.set_weight(rng.bool().then(|| rng.u32(..3))),
        // No change: the memo must be used and still be right.
        _ => {}
    }
}

#[test]
fn memo_matches_fresh_selection() {
    let mut rng = fastrand::Rng::with_seed(0x5e1ec7);
    let (mut answers, mut from_memo) = (0u32, 0u32);
    for round in 0..300 {
        let p = random_pool(&mut rng);
        for step in 0..60 {
            let now = Instant::now();
            mutate(&mut rng, &p, now);
            for family in [Family::V4, Family::V6] {
                for _ in 0..3 {
                    let client: IpAddr = ADDRS[rng.usize(..ADDRS.len())].parse().unwrap();
                    let input = SelectInput {
                        counter: rng.u64(..),
                        family,
                        client: ClientKey {
                            addr: client,
                            prefix_len: 0,
                            from_ecs: false,
                        },
                        now,
                    };
                    // The fresh decision first: `select` then records the answer
                    // (last-healthy), which the next fresh decision may read.
                    let mut fresh = Selection::default();
                    select_with(&p, &input, &mut fresh, &mut ());
                    let memo_current = p.memos[family.index()].get(state_epoch()).is_some();
                    let mut got = Selection::default();
                    select(&p, &input, &mut got);
                    assert_eq!(got, fresh, "round {round} step {step} {family:?}");
                    answers += 1;
                    from_memo += memo_current as u32;
                }
            }
        }
    }
    // The memo is exercised, not only bypassed (other tests in this process also change
    // node state, which makes a memo stale now and then, never wrong).
    assert!(
        from_memo > answers / 4,
        "{from_memo} of {answers} answers came from the memo"
    );
}

/// Every kind of change a memoized choice depends on takes effect on the very next
/// answer.
#[test]
fn each_state_change_reaches_the_next_answer() {
    let p = runtime(spec(
        Policy::RoundRobin,
        &[N("192.0.2.1", 1, 1), N("192.0.2.2", 1, 1)],
    ));
    let input = input(0);
    let answer = || {
        let mut s = Selection::default();
        select(&p, &input, &mut s);
        s.nodes().to_vec()
    };
    let both = vec![0u8, 1];
    assert_eq!(answer(), both);
    assert_eq!(answer(), both, "from the memo");
    let second = &p.nodes()[1];
    /// What a case changes, how, and how to undo it.
    type Case<'a> = (&'a str, &'a dyn Fn(), &'a dyn Fn());
    let cases: [Case; 5] = [
        (
            "down",
            &|| second.health.set_health(Health::Down, None),
            &|| second.health.set_health(Health::Up, None),
        ),
        (
            "reported weight 0",
            &|| second.health.set_reported(Some(Reported::Weight(0))),
            &|| second.health.set_reported(None),
        ),
        (
            "drain",
            &|| second.admin.set_state(AdminState::Drain),
            &|| second.admin.set_state(AdminState::Ready),
        ),
        (
            "maint",
            &|| second.admin.set_state(AdminState::Maint),
            &|| second.admin.set_state(AdminState::Ready),
        ),
        (
            "admin weight 0",
            &|| second.admin.set_weight(Some(0)),
            &|| second.admin.set_weight(None),
        ),
    ];
    for (what, take_out, put_back) in cases {
        take_out();
        assert_eq!(answer(), vec![0u8], "{what}");
        assert_eq!(answer(), vec![0u8], "{what}, from the memo");
        put_back();
        assert_eq!(answer(), both, "{what} undone");
        assert_eq!(answer(), both, "{what} undone, from the memo");
    }
}
