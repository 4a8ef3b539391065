//! Zone files: TOML on disk, validated into [`Zone`]s.
//!
//! The format is documented in `docs/zone-format.md`. Parsing happens in two passes: serde
//! (with `deny_unknown_fields`) checks the shape and reports the first shape error with its
//! position; then every record is validated and every problem found is reported, each with
//! file, line, column and key, so one run of `roundel check` shows them all.

//!
//! One file per step: [`raw`] (the serde shape, parsed apart from the model: `apart`, a
//! slice of `[names.*]` tables at a time: `split` and `chunked`), `build` (the validating
//! builder), `names` and `records` (owner names and record data).

mod apart;
mod build;
mod chunked;
mod defined;
mod fast;
mod key_path;
mod names;
pub mod raw;
mod records;
mod split;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use hickory_proto::rr::RecordType;

use super::model::{NodeTable, Zone, ZonePool};
use crate::source::{SourceMap, ZoneError};
use build::Builder;

/// Default TTL of a zone file that sets none: one hour, as is common for static data.
pub const DEFAULT_TTL: u32 = 3600;
/// Default SOA refresh (4 hours; only secondaries use it).
pub const DEFAULT_REFRESH: u32 = 14_400;
/// Default SOA retry (1 hour).
pub const DEFAULT_RETRY: u32 = 3_600;
/// Default SOA expire (2 weeks).
pub const DEFAULT_EXPIRE: u32 = 1_209_600;
/// Default SOA minimum: the negative-caching TTL (RFC 2308). Short, because a Roundel zone
/// changes often and a cached NXDOMAIN for a new name should not outlive a minute.
pub const DEFAULT_MINIMUM: u32 = 60;
/// Largest TTL (RFC 2181 section 8: 2^31 - 1).
pub const MAX_TTL: u32 = 2_147_483_647;
/// Record types a zone file may hold under `[names.*]`: the key as written, and the type.
pub const RECORD_TYPES: [(&str, RecordType); 9] = [
    ("A", RecordType::A),
    ("AAAA", RecordType::AAAA),
    ("CNAME", RecordType::CNAME),
    ("MX", RecordType::MX),
    ("TXT", RecordType::TXT),
    ("SRV", RecordType::SRV),
    ("CAA", RecordType::CAA),
    ("PTR", RecordType::PTR),
    ("NS", RecordType::NS),
];

/// Reads and validates one zone file.
pub fn load_file(path: &Path) -> Result<Zone, Vec<ZoneError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut map = SourceMap::new(path, "");
        map.report_file(format!("cannot read: {e}"));
        map.into_errors()
    })?;
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    parse_zone(path, &text, mtime)
}

/// Validates the text of one zone file. `mtime` (seconds since the epoch) seeds the
/// automatic serial.
pub fn parse_zone(path: &Path, text: &str, mtime: Option<u64>) -> Result<Zone, Vec<ZoneError>> {
    apart::parse(text, |parts| {
        let mut map = SourceMap::new(path, text);
        let (raw, names) = parts.head();
        let zone = raw.and_then(|raw| Builder::new(&mut map).build(raw, parts, names, path, mtime));
        // Every unknown key is reported (with the nearest valid one), and the rest of the
        // file is still checked; a file that does not parse gets its parse problems only
        // (what the builder made of a part of it would mislead).
        if parts.failed() {
            map = SourceMap::new(path, text);
        }
        for p in parts.problems() {
            map.report(p.at, &p.key, &p.reason);
        }
        match zone {
            Some(zone) if !map.has_errors() && !parts.failed() => Ok(zone),
            _ => Err(map.into_errors()),
        }
    })
}

/// A digest of the zone's data, independent of map order, ignoring the SOA serial.
///
/// Each name is hashed on its own and the hashes are added up, so that no sort of the
/// names is needed (a large zone's load spent a tenth of its time sorting here).
///
/// A name's hash is FxHash (rustc-hash 2), not std's SipHash, which was a tenth of the
/// builder's work. Nothing here is adversarial (the operator's own file): each step of
/// FxHash adds a word and multiplies by an odd constant, a bijection of the state, so a
/// changed TTL or type always changes the name's hash, and changed bytes (a byte string is
/// first folded to one word) do unless two folds collide, a chance of about 2^-64. std's
/// `DefaultHasher` was no more stable across builds (its algorithm is unspecified between
/// Rust releases), so members of a cluster on two builds could always differ here.
pub(super) fn digest(nodes: &NodeTable, pools: &[ZonePool]) -> u64 {
    let mut sum = 0u64;
    for (k, node) in nodes.iter() {
        let mut h = rustc_hash::FxHasher::default();
        k.hash(&mut h);
        for set in node.rrsets.iter() {
            u16::from(set.rtype).hash(&mut h);
            set.ttl.hash(&mut h);
            for r in set.records.iter() {
                if set.rtype == RecordType::SOA {
                    // Everything but the serial: the names, then the four timers after it.
                    let serial = r.soa_serial_range();
                    r.wire[..serial.start].hash(&mut h);
                    r.wire[serial.end..].hash(&mut h);
                } else {
                    r.wire.hash(&mut h);
                }
            }
        }
        sum = sum.wrapping_add(h.finish());
    }
    let mut h = std::hash::DefaultHasher::new();
    sum.hash(&mut h);
    for pool in pools {
        format!("{:?}", pool.spec).hash(&mut h);
    }
    h.finish()
}

// ---------------------------------------------------------------------------------------
// Directories and snapshots.

/// Loads the given files as one set of zones. Rejects a zone defined in two files.
pub fn load_files(files: &[PathBuf]) -> Result<Vec<Zone>, Vec<ZoneError>> {
    let mut errors = Vec::new();
    let mut zones: Vec<Zone> = Vec::new();
    for file in files {
        match load_file(file) {
            Ok(zone) => {
                if let Some(first) = zones.iter().find(|z| z.origin_key == zone.origin_key) {
                    errors.push(ZoneError {
                        file: file.clone(),
                        line: zone.origin_position.0,
                        column: zone.origin_position.1,
                        key: "origin".into(),
                        reason: format!(
                            "zone {} is already defined in {}",
                            zone.origin,
                            first.file.display()
                        ),
                    });
                } else {
                    zones.push(zone);
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(zones)
    } else {
        Err(errors)
    }
}
