//! A Roundel zone as an RFC 1035 master file any other server can load.
//!
//! Names are written absolute, TXT strings quoted with `\DDD` escapes for every byte
//! outside printable ASCII, so `roundel import` of the output gives the zone back.

use std::fmt::Write as _;

use hickory_proto::rr::RData;

use crate::zone::Zone;

/// The zone as master-file text, with absolute names throughout.
pub fn export(zone: &Zone) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "; Zone {} exported by roundel from {}",
        zone.origin,
        zone.file.display()
    );
    let _ = writeln!(out, "$ORIGIN {}", zone.origin);
    let _ = writeln!(out, "$TTL {}", zone.default_ttl);
    for (node, set) in zone.rrsets() {
        for rdata in set.records.iter() {
            let _ = writeln!(
                out,
                "{}\t{}\tIN\t{}\t{}",
                zone.name(node),
                set.ttl,
                set.rtype,
                presentation(&rdata.data(set.rtype))
            );
        }
    }
    out
}

/// Record data in master-file presentation format.
fn presentation(data: &RData) -> String {
    match data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|p| quote_character_string(p))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// A character-string in quotes, escaping what RFC 1035 section 5.1 requires.
fn quote_character_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(b as char);
            }
            0x20..=0x7E => s.push(b as char),
            _ => {
                let _ = write!(s, "\\{b:03}");
            }
        }
    }
    s.push('"');
    s
}
