//! Differential test: Roundel must answer exactly like the reference server
//! (Knot DNS) for the shipped example zones.
//!
//! * The reference serves the zones as RFC 1035 master files: `roundel export
//!   zones/X.toml` once Roundel is enabled (and that output must hold exactly
//!   the records of the hand-written `tests/data/X.zone`, compared by AXFR from
//!   Knot), until then the hand-written files.
//! * Roundel serves `zones/` in-process. While Roundel is switched off (see
//!   `tests/common/mod.rs`) a second Knot instance stands in for it, which
//!   proves the harness and the query set deterministic.
//! * Queries: every behaviour case without a documented reference difference,
//!   plus every owner name of the zones crossed with a dozen types, children
//!   of every name, case variants and no-EDNS variants (several hundred).
//!   Each is sent over UDP and over TCP.
//! * Answers are normalised (`common/normal.rs`): rcode incl. extended, flags,
//!   question echo (exact case), sections as multisets of records with TTLs,
//!   and the OPT record (version, payload, DO, options incl. EDE). Truncated
//!   UDP answers (TC=1 on both sides) are compared without their sections.
//!
//! Knot configuration (see `reference::knot_conf`): defaults, one worker each,
//! no answer rotation, no journal, zone files never rewritten. Knot's
//! defaults already give minimal answers (no NS in authority on positive
//! answers) with A/AAAA for in-zone NS/MX/SRV targets in additional.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::client::{self, Outcome, Q, Transport};
use common::compare::{about_name, compare, toml_names};
use common::reference::{self, Kind, Reference, ZoneText};
use common::wire::ty;
use common::{REFERENCE, Who, cases, master_dir, roundel_target, zones_dir};

/// The shipped zones whose names are queried: those without pools. A pool's answers
/// depend on live health, which the reference server knows nothing of
/// (tests/pools_dns.rs covers them); the static records of a pool zone are still
/// exported and compared record for record.
fn queried_files() -> Vec<std::path::PathBuf> {
    toml_files()
        .into_iter()
        .filter(|p| {
            let t: toml::Table = toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            !t.contains_key("pools")
        })
        .collect()
}

fn toml_files() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(zones_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

/// The differential query set (unique by description); `true` marks malformed
/// queries, for which FORMERR and silence are equivalent (RFC 1035 leaves the
/// choice open: Knot drops most, Roundel may answer FORMERR).
fn queries() -> Vec<(Q, bool)> {
    let mut out = vec![];
    // 1. Every behaviour case the reference answers as specified.
    for (_, group) in cases::all() {
        for c in group {
            // Silently dropped messages cost a timeout each; the behaviour
            // tests check those against both servers already.
            let dropped = matches!(c.expect, common::Expect::Drop);
            if !dropped && c.deviations.iter().all(|d| d.kind != REFERENCE) {
                out.push((
                    c.q.clone(),
                    matches!(c.expect, common::Expect::FormerrOrDrop),
                ));
            }
        }
    }
    // 2. Every owner name crossed with the usual types, and around each name.
    for f in queried_files() {
        let (origin, names) = toml_names(&f);
        for n in &names {
            out.extend(about_name(n).into_iter().map(|q| (q, false)));
        }
        out.push((
            Q::new(&format!("nothing-here.{origin}"), ty::MX).rd(),
            false,
        ));
    }
    let mut seen = BTreeSet::new();
    out.retain(|(q, _)| seen.insert(q.describe()));
    out
}

/// What the reference serves: `roundel export` of each zone (checked record for
/// record against the hand-written master files).
fn reference_zones() -> Vec<ZoneText> {
    let hand = reference::master_files(&master_dir());
    let mut exported = vec![];
    for f in toml_files() {
        let (origin, _) = toml_names(&f);
        let out = Command::new(env!("CARGO_BIN_EXE_roundel"))
            .arg("export")
            .arg(&f)
            .output()
            .expect("run roundel export");
        assert!(
            out.status.success(),
            "roundel export {} failed: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        exported.push(ZoneText {
            origin,
            text: String::from_utf8(out.stdout).expect("UTF-8 export"),
        });
    }
    exported.sort_by(|a, b| a.origin.cmp(&b.origin));
    // Same records as the hand-written files? Read both back from Knot by AXFR.
    let a = Reference::start_with(Kind::Knot, &hand, true);
    let b = Reference::start_with(Kind::Knot, &exported, true);
    assert_eq!(
        hand.iter().map(|z| &z.origin).collect::<Vec<_>>(),
        exported.iter().map(|z| &z.origin).collect::<Vec<_>>(),
        "zones/*.toml and tests/data/*.zone hold different zones"
    );
    let mut problems = String::new();
    for z in &hand {
        let x = reference::axfr(a.addr, &z.origin).unwrap();
        let y = reference::axfr(b.addr, &z.origin).unwrap();
        if x != y {
            problems += &format!("zone {} (- tests/data, + roundel export):\n", z.origin);
            for r in x.iter().filter(|r| !y.contains(r)) {
                problems += &format!("  - {r}\n");
            }
            for r in y.iter().filter(|r| !x.contains(r)) {
                problems += &format!("  + {r}\n");
            }
        }
    }
    assert!(
        problems.is_empty(),
        "roundel export differs from the hand-written master files:\n{problems}"
    );
    exported
}

#[test]
fn roundel_answers_like_the_reference() {
    let qs = queries();
    assert!(qs.len() >= 150, "only {} differential queries", qs.len());

    let reference = Reference::start(REFERENCE, &reference_zones());
    // The candidate: Roundel when enabled, otherwise a second reference instance.
    let roundel = roundel_target::start(&zones_dir());
    let stand_in;
    let (who, udp, tcp): (Who, SocketAddr, SocketAddr) = match &roundel {
        Some(r) => (Who::Roundel, r.udp, r.tcp),
        None => {
            // ROUNDEL_DIFF_STAND_IN=nsd shows how NSD differs from Knot (it fails).
            let kind = match std::env::var("ROUNDEL_DIFF_STAND_IN").as_deref() {
                Ok("nsd") => Kind::Nsd,
                _ => REFERENCE,
            };
            stand_in = Reference::start(kind, &reference::master_files(&master_dir()));
            (Who::Reference(kind), stand_in.addr, stand_in.addr)
        }
    };
    let cand_name = match who {
        Who::Roundel => "roundel".to_string(),
        Who::Reference(k) => format!("{} (stand-in for roundel)", k.name()),
    };

    let mut failures = vec![];
    let mut silent = vec![];
    for (q, malformed) in &qs {
        // Malformed queries are often dropped: do not wait long for those.
        let wait = if *malformed {
            Duration::from_millis(400)
        } else {
            client::TIMEOUT
        };
        for (t, addr) in [(Transport::Udp, udp), (Transport::Tcp, tcp)] {
            let r = client::exchange_within(reference.addr, t, q, wait);
            let c = client::exchange_within(addr, t, q, wait);
            if matches!(r, Outcome::NoResponse) {
                silent.push(format!("{} over {t}", q.describe()));
            }
            if let Some(d) = compare(&r, &c, &cand_name, *malformed) {
                failures.push(format!("--- {} over {t}\n{d}", q.describe()));
            }
        }
    }
    eprintln!(
        "differential: {} queries x 2 transports, {} vs {cand_name}, {} mismatches",
        qs.len(),
        REFERENCE.name(),
        failures.len()
    );
    if !silent.is_empty() {
        eprintln!("no answer from either (as expected for these): {silent:?}");
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} answers differ from {}:\n{}",
            failures.len(),
            qs.len() * 2,
            REFERENCE.name(),
            failures.join("\n")
        );
    }
}

/// The AXFR read-back used to check `roundel export` works: the hand-written
/// files read back from two Knot instances are identical and complete.
#[test]
fn master_files_read_back_by_axfr() {
    let hand = reference::master_files(&master_dir());
    let a = Reference::start_with(Kind::Knot, &hand, true);
    for z in &hand {
        let recs = reference::axfr(a.addr, &z.origin).unwrap();
        assert!(recs.len() >= 4, "{}: only {} records", z.origin, recs.len());
        assert!(
            recs.iter().any(|r| r.contains(" SOA ")),
            "{}: no SOA",
            z.origin
        );
    }
    let ex = reference::axfr(a.addr, "example.test.").unwrap();
    assert!(
        ex.contains(&"ns.sub.example.test. 300 IN A 192.0.2.99".to_string()),
        "glue is part of the zone"
    );
    assert!(
        ex.contains(&cases::LONG_TXT.to_string()),
        "long TXT split at 255 bytes"
    );
}
