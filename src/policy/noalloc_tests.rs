//! The answer path contract: [`select`] allocates nothing, for every policy and all-down
//! mode, with nodes up, down, ramping (slow start) and drained. A global allocator that
//! counts per thread (`tests/counting_alloc`, installed for the library's unit tests
//! only) proves it.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tests::{N, spec};
use super::{ClientKey, SelectInput, Selection, select};
use crate::node::{AdminState, Family, Health, NodeAdmin, NodeHealth, PoolRuntime};
use crate::pool::{AllDown, MinHealthy, Policy};

// The counting allocator the integration tests use, installed here for the library's
// unit tests.
#[path = "../../tests/counting_alloc/mod.rs"]
mod counting_alloc;

/// Allocations and reallocations made by this thread so far.
fn allocs() -> u64 {
    counting_alloc::ALLOCS.with(Cell::get)
}

/// Twelve nodes, every third IPv6, the last four in tier 2.
const ADDRS: [&str; 12] = [
    "192.0.2.1",
    "192.0.2.2",
    "2001:db8::3",
    "192.0.2.4",
    "192.0.2.5",
    "2001:db8::6",
    "192.0.2.7",
    "192.0.2.8",
    "2001:db8::9",
    "192.0.2.10",
    "192.0.2.11",
    "2001:db8::12",
];

fn pool(policy: Policy, all_down: AllDown) -> PoolRuntime {
    let nodes: Vec<N> = ADDRS
        .iter()
        .enumerate()
        .map(|(i, a)| N(a, i as u32 + 1, if i >= 8 { 2 } else { 1 }))
        .collect();
    let mut spec = spec(policy, &nodes);
    spec.max_answers = 3;
    spec.min_healthy = MinHealthy::Permille(500);
    spec.all_down = all_down;
    spec.slow_start = Some(Duration::from_secs(60));
    let epoch = Instant::now();
    let health: Vec<_> = (0..12)
        .map(|i| {
            let h = Arc::new(NodeHealth::new(epoch));
            // A mix: some up, one ramping, some down.
            let state = if i % 4 == 1 { Health::Down } else { Health::Up };
            h.force(
                state,
                (i == 2).then_some(epoch),
                Some(Duration::from_millis(i as u64)),
            );
            h
        })
        .collect();
    let admin: Vec<_> = (0..12).map(|_| Arc::new(NodeAdmin::default())).collect();
    admin[4].set_state(AdminState::Drain);
    PoolRuntime::new(spec, health, admin)
}

#[test]
fn select_never_allocates() {
    // The counter does count: an allocation is seen.
    let before = allocs();
    std::hint::black_box(vec![1u8; 8]);
    assert!(allocs() > before);

    let policies = [
        Policy::RoundRobin,
        Policy::Weighted,
        Policy::ClientHash,
        Policy::Fastest,
    ];
    let modes = [
        AllDown::ServeAll,
        AllDown::LastHealthy,
        AllDown::Empty,
        AllDown::ServFail,
    ];
    for policy in policies {
        for mode in modes {
            let p = pool(policy, mode);
            let mut out = Selection::default();
            for all_down in [false, true] {
                if all_down {
                    for n in p.nodes() {
                        n.health.force(Health::Down, None, None);
                    }
                }
                let before = allocs();
                for i in 0..1000u64 {
                    let input = SelectInput {
                        counter: p.next_counter(),
                        family: if i % 2 == 0 { Family::V4 } else { Family::V6 },
                        client: ClientKey {
                            addr: format_free_addr(i),
                            prefix_len: 24,
                            from_ecs: i % 3 == 0,
                        },
                        now: Instant::now(),
                    };
                    select(&p, &input, &mut out);
                }
                let after = allocs();
                assert_eq!(after - before, 0, "{policy:?} {mode:?} all_down={all_down}");
            }
        }
    }
}

fn format_free_addr(i: u64) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000u32 + (i as u32) * 256))
}
