//! The UDP answer path with cookies and rate limiting allocates nothing per query: client
//! cookies, valid and invalid server cookies, malformed cookies (FORMERR), answers that
//! rate limiting lets through, slips and drops, over the shipped zones. A counting global
//! allocator (per thread) proves it, as in health_select_noalloc.rs.

mod counting_alloc;

use counting_alloc::ALLOCS;
use std::net::IpAddr;
use std::time::Instant;

use roundel::dns::respond;
use roundel::dns::rrl_config::{CookieConfig, RrlConfig};
use roundel::dns::shield::Shield;
use roundel::dns::stats::{DnsStats, Transport};

fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

fn query(name: &str, qtype: u16, cookie: Option<&[u8]>) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(&wire_name(name));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    let c = cookie.unwrap_or(&[]);
    let opt_len = if cookie.is_some() { 4 + c.len() } else { 0 };
    m.extend_from_slice(&(opt_len as u16).to_be_bytes());
    if cookie.is_some() {
        m.extend_from_slice(&[0, 10]);
        m.extend_from_slice(&(c.len() as u16).to_be_bytes());
        m.extend_from_slice(c);
    }
    m
}

#[test]
fn cookies_and_rate_limiting_allocate_nothing_per_query() {
    // The counter does count: an allocation is seen.
    let before = ALLOCS.with(|a| a.get());
    std::hint::black_box(vec![1u8; 8]);
    assert!(ALLOCS.with(|a| a.get()) > before);

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
    let snapshot = roundel::zone::load_snapshot(&dir, None).expect("shipped zones load");
    let rrl = RrlConfig {
        responses_per_second: 20,
        table_size: 4096,
        ..RrlConfig::default()
    };
    let shield = Shield::new(&rrl, &CookieConfig::default()).unwrap();
    let stats = DnsStats::default();
    let src: IpAddr = "192.0.2.7".parse().unwrap();
    let mut out = Vec::with_capacity(65_535);

    // A valid server cookie for `src`, learnt from a first answer.
    let client = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let first = query("ns1.example.test.", 1, Some(&client));
    respond(
        &first,
        src,
        &snapshot,
        &shield,
        &mut out,
        &stats,
        0,
        Instant::now(),
        Transport::Udp,
    );
    let valid = out[out.len() - 24..].to_vec();
    assert_eq!(valid[..8], client);
    let mut invalid = valid.clone();
    invalid[23] ^= 1;

    let queries = [
        query("ns1.example.test.", 1, None),
        query("big.example.test.", 16, None),
        query("nx.example.test.", 1, None),
        query("anything.apps.example.test.", 1, None),
        query("www.ext.example.test.", 1, None),
        query("example.org.", 1, None),
        query("ns1.example.test.", 1, Some(&client)),
        query("big.example.test.", 16, Some(&valid)),
        query("ns1.example.test.", 1, Some(&invalid)),
        query("ns1.example.test.", 1, Some(&[9; 12])),
    ];
    let mut answer = |q: &[u8]| {
        respond(
            q,
            src,
            &snapshot,
            &shield,
            &mut out,
            &stats,
            0,
            Instant::now(),
            Transport::Udp,
        )
    };
    // Warm-up: first-use allocations (thread-local state of the lock-free secret load).
    for q in &queries {
        answer(q);
    }
    let before = ALLOCS.with(|a| a.get());
    for i in 0..5000 {
        let q = &queries[i % queries.len()];
        answer(q);
    }
    let after = ALLOCS.with(|a| a.get());
    assert_eq!(after - before, 0, "allocations on the UDP path");

    // The loop did go through every branch: limited (slipped and dropped) and not.
    let w = stats.wire_totals();
    assert!(w.rrl_slipped > 0 && w.rrl_dropped > 0, "{w:?}");
    assert!(w.cookies.iter().all(|&n| n > 0), "{w:?}");
}
