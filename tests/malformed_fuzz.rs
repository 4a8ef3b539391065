//! No input makes the query path panic: 200,000 mutated queries (bit flips, truncation,
//! splices, random counts and lengths, a deterministic generator so failures reproduce)
//! go through the UDP path against the shipped zones, their pools checked against real
//! backends (two nodes up, one down) so that pool names reach the selection code. Every
//! reply must parse as a DNS message, be a response echoing the query ID, and never be
//! larger than the UDP limit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Message, MessageType};
use roundel::dns::respond;
use roundel::dns::rrl_config::{CookieConfig, RrlConfig};
use roundel::dns::shield::Shield;
use roundel::dns::stats::{DnsStats, Transport};
use roundel::node::Health;
use roundel::reload::{Reloader, Trigger};
use roundel::zone::{Snapshot, SnapshotCell};
use support_backends::{Backend, Mode};

mod support_backends;

/// The shipped zones, their pools' HTTP check pointed at real backends on 127.0.0.11 and
/// 127.0.0.12 (a port of ours), with nothing on 127.0.0.13, loaded by the real reloader:
/// the first check results decide the states, so the policies see mixed ones (two nodes
/// up, one down) and pool names reach the selection code.
struct LivePools {
    rt: tokio::runtime::Runtime,
    reloader: Reloader,
    cell: Arc<SnapshotCell>,
    _backends: Vec<Backend>,
    dir: std::path::PathBuf,
}

impl LivePools {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let first = rt.block_on(Backend::http("127.0.0.11", Mode::ok()));
        let port = first.port();
        let second = rt.block_on(Backend::http_at(
            SocketAddr::from(([127, 0, 0, 12], port)),
            Mode::ok(),
        ));
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
        let dir = std::env::temp_dir().join(format!("roundel-malformed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&shipped).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replace("port = 8080,", &format!("port = {port},"));
            std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
        }
        let cell = Arc::new(SnapshotCell::from_pointee(Snapshot::default()));
        let reloader = Reloader::new(cell.clone(), dir.clone());
        rt.block_on(reloader.reload_by(Trigger::Startup))
            .expect("the shipped zones load");
        Self {
            rt,
            reloader,
            cell,
            _backends: vec![first, second],
            dir,
        }
    }
}

impl Drop for LivePools {
    fn drop(&mut self) {
        self.rt.block_on(self.reloader.monitor().shutdown());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A number below `n` (0 when `n` is 0), from a seeded generator so that a failure can be
/// replayed.
fn below(rng: &mut fastrand::Rng, n: usize) -> usize {
    rng.usize(..n.max(1))
}

/// Well-formed seeds: plain, EDNS with ECS, DO, compression in additional, two questions.
fn seeds() -> Vec<Vec<u8>> {
    let q = |name: &[u8], qtype: u16, ar: &[u8], arcount: u16| {
        let mut m = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(ar);
        m
    };
    let ecs = [
        0u8, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100,
    ];
    let mut cookie = vec![0u8, 0, 41, 4, 0, 0, 0, 0, 0, 0, 28, 0, 10, 0, 24];
    cookie.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 0, 0, 0x5c, 0xf7, 0x9f, 0x11]);
    cookie.extend_from_slice(&[0x1f, 0x81, 0x30, 0xc3, 0xee, 0xe2, 0x94, 0x80]);
    vec![
        q(b"\x03www\x07example\x04test\x00", 1, &[], 0),
        q(b"\x01x\x04apps\x07example\x04test\x00", 28, &ecs, 1),
        q(b"\x03www\x02lb\x04test\x00", 1, &ecs, 1),
        q(
            b"\x07example\x04test\x00",
            255,
            &[0xC0, 0x0C, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0],
            1,
        ),
        q(b"\x04host\x03sub\x07example\x04test\x00", 15, &[], 0),
        // A COOKIE option with a client and a (wrong) server cookie.
        q(b"\x03www\x07example\x04test\x00", 1, &cookie, 1),
    ]
}

#[test]
fn mutated_queries_never_panic_and_replies_are_well_formed() {
    let live = LivePools::start();
    let snapshot = live.cell.load_full();
    let states: Vec<Health> = snapshot
        .pool_runtimes()
        .iter()
        .flat_map(|(_, p)| p.nodes().iter().map(|n| n.health.health()))
        .collect();
    assert!(
        states.contains(&Health::Up) && states.contains(&Health::Down),
        "the pools' nodes are not in mixed states: {states:?}"
    );
    let stats = DnsStats::default();
    // Cookies on (their parsing and verification are fuzzed too), rate limiting off (it
    // would drop most replies of one source and hide the checks below).
    let shield = Shield::new(&RrlConfig::disabled(), &CookieConfig::default()).unwrap();
    let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15);
    let seeds = seeds();
    let mut out = Vec::new();
    let (mut answered, mut dropped, mut pool_answers) = (0u32, 0u32, 0u32);
    let start = Instant::now();
    for i in 0..200_000u32 {
        let mut m = seeds[below(&mut rng, seeds.len())].clone();
        for _ in 0..1 + below(&mut rng, 4) {
            if m.is_empty() {
                break;
            }
            match below(&mut rng, 6) {
                0 => {
                    let at = below(&mut rng, m.len());
                    m[at] ^= 1 << below(&mut rng, 8);
                }
                1 => {
                    let at = below(&mut rng, m.len());
                    m[at] = rng.u64(..) as u8;
                }
                2 => m.truncate(below(&mut rng, m.len() + 1)),
                3 => {
                    let extra = below(&mut rng, 40);
                    m.extend((0..extra).map(|_| rng.u64(..) as u8));
                }
                // Header counts: the parser must not trust them.
                4 if m.len() >= 12 => {
                    let at = 4 + 2 * below(&mut rng, 4);
                    m[at..at + 2].copy_from_slice(&(rng.u64(..) as u16).to_be_bytes());
                }
                _ => {
                    // A compression pointer anywhere.
                    let at = below(&mut rng, m.len().saturating_sub(1));
                    if at + 1 < m.len() {
                        m[at] = 0xC0 | (rng.u64(..) as u8 & 0x3F);
                        m[at + 1] = rng.u64(..) as u8;
                    }
                }
            }
        }
        respond(
            &m,
            src,
            &snapshot,
            &shield,
            &mut out,
            &stats,
            0,
            Instant::now(),
            Transport::Udp,
        );
        if out.is_empty() {
            dropped += 1;
            continue;
        }
        answered += 1;
        assert!(
            out.len() >= 12,
            "case {i}: reply shorter than a header: {m:02x?}"
        );
        assert!(out.len() <= 1232, "case {i}: reply of {} bytes", out.len());
        assert_eq!(out[..2], m[..2], "case {i}: ID not echoed");
        let reply = Message::from_vec(&out)
            .unwrap_or_else(|e| panic!("case {i}: reply does not parse ({e}): {out:02x?}"));
        assert_eq!(
            reply.metadata.message_type,
            MessageType::Response,
            "case {i}"
        );
        if reply
            .answers
            .iter()
            .any(|r| r.name.to_ascii().ends_with("lb.test.") && r.record_type().is_ip_addr())
        {
            pool_answers += 1;
        }
    }
    println!(
        "{answered} answered ({pool_answers} with pool addresses), {dropped} dropped, in {:?}",
        start.elapsed()
    );
    assert!(
        pool_answers > 100,
        "pool names must reach the selection code"
    );
    assert!(
        answered > 1000 && dropped > 100,
        "the mutations must exercise both outcomes"
    );
}
