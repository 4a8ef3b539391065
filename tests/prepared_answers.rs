//! Answers from sections encoded at load time (`zone::prepared`) are byte for byte the
//! answers the per-query encoder writes: for every name of the shipped zones and of a zone
//! built to hit the edge cases (delegations whose name servers lie below the cut, an SOA
//! whose names lie in the zone, wildcards, CNAMEs, MX with in-zone exchanges), for names
//! below them and absent from them, every common type, the client's case, with and without
//! EDNS, with a cookie, and at the smallest UDP size (where the per-query path truncates),
//! the response is encoded twice, once with the room for prepared sections and once with
//! none, and the two must be equal. Pools (every policy, mixed families, some nodes down)
//! included.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use roundel::answer::{Question, Response, answer_at};
use roundel::dns::wire::{self, Parsed};
use roundel::node::{Health, NodeAdmin, NodeHealth, PoolRuntime};
use roundel::zone::Snapshot;

const EDGE_ZONE: &str = r#"origin = "edge.test."
ttl = 300
[soa]
mname = "ns1"
rname = "hostmaster.ns1"
[names."@"]
NS = ["ns1", "ns2.other.example."]
MX = ["10 mail"]
SRV = ["10 5 5060 ns1"]
TXT = "apex text"
[names.ns1]
A = "192.0.2.53"
AAAA = "2001:db8::53"
[names.mail]
A = "192.0.2.25"
[names.static]
A = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
AAAA = "2001:db8::1"
TXT = ["one", "two"]
[names.alias]
CNAME = "static"
[names.out]
CNAME = "www.other.example."
[names.sub]
NS = ["ns.sub", "ns2.sub", "ns.elsewhere.example."]
[names."ns.sub"]
A = "192.0.2.54"
[names."ns2.sub"]
AAAA = "2001:db8::54"
[names.deep]
NS = "ns1.edge.test."
[names."*.wild"]
A = "192.0.2.99"
TXT = "wild"
[checks.none]
none = true
[pools.sticky]
check = "none"
policy = "client-hash"
nodes = ["192.0.2.31", "192.0.2.32", "192.0.2.33", "2001:db8::31", "2001:db8::32"]
[pools.one]
check = "none"
nodes = ["192.0.2.41"]
[pools.rr]
check = "none"
nodes = ["192.0.2.51", "192.0.2.52", "192.0.2.53", "2001:db8::51"]
[names.big]
TXT = [
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
  "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
  "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
  "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
]
"#;

fn load() -> Snapshot {
    // One directory per call: the tests run in parallel.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("roundel-prepared-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("edge.test.toml"), EDGE_ZONE).unwrap();
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("zones");
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let mut snapshot = roundel::zone::load_snapshot(&dir, None).expect("zones load");
    let _ = std::fs::remove_dir_all(&dir);
    attach_runtimes(&mut snapshot);
    snapshot
}

/// A runtime for every pool, node `i` up unless `i % 4 == 3` (no probe runs).
fn attach_runtimes(snapshot: &mut Snapshot) {
    let epoch = Instant::now();
    let runtimes: Vec<_> = snapshot
        .pools()
        .into_iter()
        .map(|(key, spec)| {
            let health = (0..spec.nodes.len())
                .map(|i| {
                    let h = Arc::new(NodeHealth::new(epoch));
                    let state = if i % 4 == 3 { Health::Down } else { Health::Up };
                    h.force(state, None, None);
                    h
                })
                .collect();
            let admin = (0..spec.nodes.len())
                .map(|_| Arc::new(NodeAdmin::default()))
                .collect();
            (key, Arc::new(PoolRuntime::new(spec, health, admin)))
        })
        .collect();
    snapshot.attach_pools(runtimes);
}

/// Dotted text of a lowercase wire name, labels in mixed case (the client's case is
/// echoed, so it must not matter which path answers).
fn mixed_case(wire: &[u8]) -> Vec<u8> {
    wire.iter()
        .enumerate()
        .map(|(i, b)| {
            if i % 2 == 0 {
                b.to_ascii_uppercase()
            } else {
                *b
            }
        })
        .collect()
}

fn query(qname: &[u8], qtype: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut m = vec![
        0x12,
        0x34,
        0x01,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        edns.is_some() as u8,
    ];
    m.extend_from_slice(qname);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if let Some((payload, cookie)) = edns {
        m.extend_from_slice(&[0, 0, 41]);
        m.extend_from_slice(&payload.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0x80, 0]);
        if cookie {
            m.extend_from_slice(&[0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        } else {
            m.extend_from_slice(&[0, 0]);
        }
    }
    m
}

/// Encodes the response to `msg` with the prepared sections allowed or not; returns the
/// bytes and whether prepared sections were used.
fn respond(snapshot: &Snapshot, msg: &[u8], prepared: bool) -> (Vec<u8>, bool) {
    let mut name_buf = [0; 255];
    let Parsed::Query(q) = wire::parse(msg, &mut name_buf) else {
        panic!("not a query: {msg:02x?}")
    };
    let question = Question {
        qname: q.qname(),
        qtype: q.qtype,
        client: q.client(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    };
    let limit = q.udp_limit();
    let room = if prepared { wire::room(&q, limit) } else { 0 };
    let mut resp = Response::default();
    answer_at(snapshot, &question, Instant::now(), room, &mut resp);
    let mut out = Vec::new();
    wire::encode(&mut out, &q, &resp, limit);
    (out, resp.encoded.is_some())
}

#[test]
fn prepared_answers_equal_the_per_query_encoding() {
    // Two snapshots of the same zones, one answered each way: each query advances both
    // pools' rotation counters alike, so round robin and weighted pools pick alike.
    let snapshot = load();
    let twin = load();
    let mut names: Vec<Vec<u8>> = Vec::new();
    for zone in snapshot.zones.values() {
        for key in zone.nodes.keys() {
            names.push(key.to_vec());
            // Below every name (a referral below a cut, NXDOMAIN or a wildcard elsewhere),
            // with a label that equals the first label of name servers below cuts.
            for label in [&b"\x04host"[..], b"\x02ns", b"\x03ns1", b"\x02ns\x01x"] {
                names.push([label, key].concat());
            }
        }
    }
    names.push(b"\x02nx\x04edge\x04test\x00".to_vec());
    names.push(b"\x03www\x05other\x07example\x00".to_vec());
    let types: [u16; 12] = [1, 28, 16, 15, 2, 6, 5, 255, 43, 33, 12, 99];
    let edns_variants = [
        None,
        Some((512, false)),
        Some((1232, false)),
        Some((4096, true)),
    ];
    let (mut total, mut used) = (0usize, 0usize);
    for name in &names {
        for &qtype in &types {
            for &edns in &edns_variants {
                let msg = query(&mixed_case(name), qtype, edns);
                let (fast, took) = respond(&snapshot, &msg, true);
                let (slow, _) = respond(&twin, &msg, false);
                assert_eq!(
                    fast, slow,
                    "name {name:02x?} type {qtype} edns {edns:?}: prepared {took}"
                );
                total += 1;
                used += took as usize;
            }
        }
    }
    // The prepared path is taken for most answers, so the comparison above tests it.
    assert!(
        used * 2 > total,
        "prepared sections used in only {used} of {total} answers"
    );
}

#[test]
fn a_question_sharing_a_name_server_label_takes_the_per_query_path() {
    let snapshot = load();
    // ns.sub.edge.test is at the cut `sub`, whose NS records name ns.sub: the per-query
    // encoder compresses them against the whole question name, the prepared referral
    // against the cut only.
    let msg = query(b"\x01a\x02ns\x03sub\x04edge\x04test\x00", 1, None);
    let (_, took) = respond(&snapshot, &msg, true);
    assert!(
        !took,
        "the prepared referral was used where it does not apply"
    );
    let msg = query(b"\x04host\x03sub\x04edge\x04test\x00", 1, None);
    let (_, took) = respond(&snapshot, &msg, true);
    assert!(took, "the prepared referral was not used for host.sub");
}
