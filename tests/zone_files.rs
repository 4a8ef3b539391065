//! The shipped TOML zones (zones/*.toml) and their hand-written RFC 1035
//! twins (tests/data/*.zone) must hold exactly the same records, because the
//! reference server serves the twins while Roundel serves the TOML.
//!
//! Independent of Roundel: a small reading of the zone format as documented
//! (relative names, zone/name/RRset TTLs, TXT split at 255 bytes, inner arrays
//! as multi-string records) is compared with the records Knot loaded from the
//! master files (read back by AXFR). Once `roundel export` exists the
//! differential test checks the same thing through Roundel itself.

mod common;

use std::collections::BTreeMap;

use common::reference::{self, Kind, Reference};
use common::{master_dir, zones_dir};
use toml::Value;

fn absolute(name: &str, origin: &str) -> String {
    let n = match name {
        "@" => origin.to_string(),
        n if n.ends_with('.') => n.to_string(),
        n => format!("{n}.{origin}"),
    };
    n.to_ascii_lowercase()
}

fn quoted(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out += &format!("\\{b:03}"),
        }
    }
    out + "\""
}

/// One TXT record: each string split into 255-byte character-strings.
fn txt(strings: &[&str]) -> String {
    let mut parts = vec![];
    for s in strings {
        let b = s.as_bytes();
        if b.is_empty() {
            parts.push(quoted(b));
        }
        for chunk in b.chunks(255) {
            parts.push(quoted(chunk));
        }
    }
    parts.join(" ")
}

/// Presentation RDATA of one record, as the test's wire renderer prints it.
fn rdata(rtype: &str, v: &Value, origin: &str) -> String {
    if rtype == "TXT" {
        return match v {
            Value::String(s) => txt(&[s]),
            Value::Array(a) => txt(&a
                .iter()
                .map(|x| x.as_str().expect("TXT string"))
                .collect::<Vec<_>>()),
            other => panic!("bad TXT value {other:?}"),
        };
    }
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{rtype}: expected a string, got {v:?}"));
    let f: Vec<&str> = s.split_whitespace().collect();
    match rtype {
        "A" => s.parse::<std::net::Ipv4Addr>().expect("A").to_string(),
        "AAAA" => s.parse::<std::net::Ipv6Addr>().expect("AAAA").to_string(),
        "NS" | "CNAME" | "PTR" => absolute(s, origin),
        "MX" => format!("{} {}", f[0], absolute(f[1], origin)),
        "SRV" => format!("{} {} {} {}", f[0], f[1], f[2], absolute(f[3], origin)),
        "CAA" => f.join(" "),
        other => panic!("type {other} not known to this test: extend rdata()"),
    }
}

/// Every record of a TOML zone, canonical text, sorted.
fn toml_records(path: &std::path::Path) -> (String, Vec<String>) {
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let origin = t["origin"].as_str().expect("origin").to_ascii_lowercase();
    let zone_ttl = t["ttl"].as_integer().expect("ttl");
    let soa = t["soa"].as_table().expect("[soa]");
    let g = |k: &str| soa[k].as_integer().unwrap_or_else(|| panic!("soa.{k}"));
    let mut out = vec![format!(
        "{origin} {} IN SOA {} {} {} {} {} {} {}",
        soa.get("ttl")
            .and_then(Value::as_integer)
            .unwrap_or(zone_ttl),
        absolute(soa["mname"].as_str().unwrap(), &origin),
        absolute(soa["rname"].as_str().unwrap(), &origin),
        g("serial"),
        g("refresh"),
        g("retry"),
        g("expire"),
        g("minimum")
    )];
    let empty = toml::Table::new();
    let names = t.get("names").and_then(Value::as_table).unwrap_or(&empty);
    for (name, rrsets) in names {
        let owner = absolute(name, &origin);
        let rrsets = rrsets.as_table().expect("name table");
        let name_ttl = rrsets
            .get("ttl")
            .and_then(Value::as_integer)
            .unwrap_or(zone_ttl);
        for (rtype, v) in rrsets.iter().filter(|(k, _)| *k != "ttl") {
            let (ttl, data) = match v {
                Value::Table(t) => (
                    t.get("ttl").and_then(Value::as_integer).unwrap_or(name_ttl),
                    &t["data"],
                ),
                v => (name_ttl, v),
            };
            // A string is one record; an array holds one record per element
            // (for TXT an inner array is one multi-string record).
            let items: Vec<&Value> = match data {
                Value::Array(a) => a.iter().collect(),
                v => vec![v],
            };
            for item in items {
                out.push(format!(
                    "{owner} {ttl} IN {rtype} {}",
                    rdata(rtype, item, &origin)
                ));
            }
        }
    }
    out.sort();
    (origin, out)
}

#[test]
fn toml_zones_and_master_files_hold_the_same_records() {
    let knot = Reference::start_with(Kind::Knot, &reference::master_files(&master_dir()), true);
    let mut files: Vec<_> = std::fs::read_dir(zones_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut problems = BTreeMap::new();
    for f in &files {
        let (origin, from_toml) = toml_records(f);
        let from_master = reference::axfr(knot.addr, &origin)
            .unwrap_or_else(|e| panic!("{origin}: no tests/data/{}zone? {e}", origin));
        let mut p = String::new();
        for r in from_master.iter().filter(|r| !from_toml.contains(r)) {
            p += &format!("  only in tests/data: {r}\n");
        }
        for r in from_toml.iter().filter(|r| !from_master.contains(r)) {
            p += &format!("  only in {}: {r}\n", f.display());
        }
        if !p.is_empty() {
            problems.insert(origin, p);
        }
    }
    assert_eq!(
        files.len(),
        reference::master_files(&master_dir()).len(),
        "one master file per TOML zone"
    );
    assert!(
        problems.is_empty(),
        "zones/*.toml and tests/data/*.zone differ:\n{}",
        problems
            .iter()
            .map(|(z, p)| format!("{z}:\n{p}"))
            .collect::<String>()
    );
}
