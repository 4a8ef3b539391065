//! The UDP answer path allocates nothing per query: parse, answer (static names, a pool,
//! NXDOMAIN, a referral, a rejected query), encode and count, as `dns::udp`'s workers run
//! it. A counting global allocator (per thread) proves it; the zone is loaded by the real
//! reloader, and the pool's nodes are checked over TCP against real listeners.

mod counting_alloc;

use counting_alloc::ALLOCS;
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use roundel::dns::respond;
use roundel::dns::rrl_config::{CookieConfig, RrlConfig};
use roundel::dns::shield::Shield;
use roundel::dns::stats::{DnsStats, Transport};
use roundel::reload::{Reloader, Trigger};
use roundel::zone::Snapshot;

fn query(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut m = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, edns as u8];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    m
}

#[test]
fn answering_over_udp_never_allocates() {
    // Two pool nodes whose TCP check succeeds: listeners on the same port.
    let first = TcpListener::bind("127.0.0.71:0").unwrap();
    let port = first.local_addr().unwrap().port();
    let _second = TcpListener::bind(("127.0.0.72", port)).unwrap();

    let dir = std::env::temp_dir().join(format!("roundel-udp-noalloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("lb.test.toml"),
        format!(
            "origin = \"lb.test.\"\nttl = 300\n[soa]\nmname = \"ns1\"\nrname = \"hostmaster\"\n\
             [names.\"@\"]\nNS = \"ns1\"\n[names.ns1]\nA = \"192.0.2.53\"\n\
             [names.static]\nA = [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\"]\n\
             [names.sub]\nNS = \"ns.sub\"\n[names.\"ns.sub\"]\nA = \"192.0.2.54\"\n\
             [checks.tcp]\ntcp = {{ port = {port} }}\ninterval = \"1h\"\ntimeout = \"1s\"\nrise = 1\n\
             [pools.www]\ncheck = \"tcp\"\nnodes = [\"127.0.0.71\", \"127.0.0.72\"]\n"
        ),
    )
    .unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cell = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    let reloader = Reloader::new(cell.clone(), dir.clone());
    rt.block_on(reloader.reload_by(Trigger::Startup)).unwrap();
    let snapshot = cell.load_full();
    let stats = DnsStats::default();
    // Rate limiting and cookies have their own allocation test (udp_path_noalloc.rs).
    let shield = Shield::new(&RrlConfig::disabled(), &CookieConfig::default()).unwrap();
    let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut out = Vec::with_capacity(4096);

    let cases = [
        ("static", query("STATIC.lb.test", 1, true), 3u16),
        ("pool", query("www.lb.test", 1, false), 2),
        ("nxdomain", query("nx.lb.test", 1, true), 0),
        ("referral", query("host.sub.lb.test", 1, false), 0),
        ("refused", query("other.example", 1, true), 0),
    ];
    // The counter does count: an allocation is seen.
    let before = ALLOCS.with(Cell::get);
    std::hint::black_box(vec![1u8; 8]);
    assert!(ALLOCS.with(Cell::get) > before);

    let answer = |q: &[u8], out: &mut Vec<u8>| {
        respond(
            q,
            src,
            &snapshot,
            &shield,
            out,
            &stats,
            0,
            Instant::now(),
            Transport::Udp,
        )
    };
    for (what, msg, answers) in &cases {
        // Warm up (first-use growth of the output buffer is not per query).
        answer(msg, &mut out);
        assert!(!out.is_empty(), "{what}: no response");
        assert_eq!(
            u16::from_be_bytes([out[6], out[7]]),
            *answers,
            "{what}: answer count"
        );
        let before = ALLOCS.with(Cell::get);
        for _ in 0..1000 {
            answer(msg, &mut out);
        }
        let allocs = ALLOCS.with(Cell::get) - before;
        assert_eq!(allocs, 0, "{what}: {allocs} allocations in 1000 queries");
    }
    rt.block_on(reloader.monitor().shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}
