//! The code under fuzzing, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and by
//! the corpus replay test (`tests/fuzz_corpus.rs`), so CI runs every committed corpus
//! input through exactly what the fuzzer ran, on stable Rust.
//!
//! Each function panics only when an invariant is broken (or the code under test panics).

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roundel::dns::respond;
use roundel::dns::rrl_config::{CookieConfig, RrlConfig};
use roundel::dns::shield::Shield;
use roundel::dns::stats::{DnsStats, Transport};
use roundel::node::{AdminState, Health, NodeAdmin, NodeHealth, PoolRuntime};
use roundel::zone::Snapshot;

/// The repository root: the fuzz crate lives one level down.
fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("fuzz/harness.rs").is_file() {
        here.to_path_buf()
    } else {
        here.join("..")
    }
}

/// The shipped zones plus `fuzz/zones/fuzz.test.toml` (every policy and all-down mode),
/// with pool runtimes attached whose node health the input sets, so that queries reach
/// policy selection.
pub struct QueryEngine {
    snapshot: Snapshot,
    health: Vec<Arc<NodeHealth>>,
    admin: Vec<Arc<NodeAdmin>>,
    stats: DnsStats,
    /// Cookies on (their parsing and verification are fuzzed too), rate limiting off (it
    /// would drop most replies of the few client addresses and hide the checks).
    shield: Shield,
    out: Vec<u8>,
    epoch: Instant,
}

impl QueryEngine {
    /// Loads the zones and attaches a runtime to every pool.
    pub fn new() -> Self {
        let root = root();
        let mut files = roundel::zone::dir::zone_files(&root.join("zones")).expect("shipped zones");
        files.push(root.join("fuzz/zones/fuzz.test.toml"));
        let mut snapshot =
            roundel::zone::snapshot_from_files(&files, None).expect("fuzz zones load");
        let epoch = Instant::now();
        let (mut health, mut admin, mut runtimes) = (Vec::new(), Vec::new(), Vec::new());
        for (key, spec) in snapshot.pools() {
            let h: Vec<_> = spec
                .nodes
                .iter()
                .map(|_| Arc::new(NodeHealth::new(epoch)))
                .collect();
            let a: Vec<_> = spec
                .nodes
                .iter()
                .map(|_| Arc::new(NodeAdmin::default()))
                .collect();
            health.extend(h.iter().cloned());
            admin.extend(a.iter().cloned());
            runtimes.push((key, Arc::new(PoolRuntime::new(spec, h, a))));
        }
        assert!(runtimes.len() >= 6, "the fuzz zones have pools");
        snapshot.attach_pools(runtimes);
        Self {
            snapshot,
            health,
            admin,
            stats: DnsStats::default(),
            shield: Shield::new(&RrlConfig::disabled(), &CookieConfig::default())
                .expect("cookie secret"),
            out: Vec::with_capacity(4096),
            epoch,
        }
    }

    /// One input: byte 0 picks the client address, bytes 1..5 each node's health (two
    /// bits a node: up, down, unknown, up and ramping after slow start) and admin state,
    /// the rest is the query message as it came off the wire.
    pub fn run(&mut self, data: &[u8]) {
        if data.len() < 5 {
            return;
        }
        let (ctl, msg) = data.split_at(5);
        let src = match ctl[0] % 4 {
            0 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            1 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, ctl[0])),
            2 => IpAddr::V6(Ipv6Addr::LOCALHOST),
            _ => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, ctl[0].into())),
        };
        let bits = u32::from_le_bytes([ctl[1], ctl[2], ctl[3], ctl[4]]);
        for (i, (h, a)) in self.health.iter().zip(&self.admin).enumerate() {
            let b = (bits >> ((2 * i) % 32)) & 3;
            let (state, back) = match b {
                0 => (Health::Up, None),
                1 => (Health::Down, None),
                2 => (Health::Unknown, None),
                _ => (Health::Up, Some(self.epoch)),
            };
            h.force(
                state,
                back,
                Some(Duration::from_micros(100 + i as u64 * 37)),
            );
            a.set_state(match (bits >> (i % 29)) & 7 {
                6 => AdminState::Drain,
                7 => AdminState::Maint,
                _ => AdminState::Ready,
            });
        }
        respond(
            msg,
            src,
            &self.snapshot,
            &self.shield,
            &mut self.out,
            &self.stats,
            0,
            Instant::now(),
            Transport::Udp,
        );
        if self.out.is_empty() {
            return;
        }
        let out = &self.out;
        assert!(out.len() >= 12, "reply shorter than a header");
        assert!(out.len() <= 4096, "reply of {} bytes over UDP", out.len());
        assert!(msg.len() >= 2 && out[..2] == msg[..2], "ID not echoed");
        assert!(out[2] & 0x80 != 0, "QR not set in a reply");
        // Our own replies must parse: hickory-proto as an independent reader.
        if let Err(e) = hickory_proto::op::Message::from_vec(out) {
            panic!("reply does not parse: {e}\nquery {msg:02x?}\nreply {out:02x?}");
        }
    }
}

impl Default for QueryEngine {
    fn default() -> Self {
        Self::new()
    }
}

/// A zone file (TOML) through the parser and validator; a valid zone is also exported as
/// a master file and that exported text imported again.
pub fn zone_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    match roundel::zone::file::parse_zone(path, text, Some(1)) {
        Ok(zone) => {
            let master = roundel::zone::master::export(&zone);
            let _ = roundel::zone::master::import(&master, Path::new("fuzz.zone"), None);
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "an error result with no error");
            for e in &errors {
                assert!(!e.reason.is_empty(), "an error without a reason: {e:?}");
                assert!(e.line <= text.lines().count() + 1, "line out of range: {e}");
            }
        }
    }
}

/// An RFC 1035 master file through the importer; what it produces goes through the zone
/// file parser (it may be rejected there, but nothing may panic).
pub fn master_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line may name an origin for files without $ORIGIN.
    let origin = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("; origin "))
        .map(str::trim);
    if let Ok(toml) = roundel::zone::master::import(text, Path::new("fuzz.zone"), origin) {
        let _ = roundel::zone::file::parse_zone(Path::new("fuzz.toml"), &toml, Some(1));
    }
}
