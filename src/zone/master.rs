//! RFC 1035 master files: import into Roundel's TOML, export from it.
//!
//! `roundel import` reads a BIND/NSD-style zone file with hickory-proto's parser and
//! writes an equivalent Roundel zone file; `roundel export` writes a zone as a master
//! file any other server can load. Import then export keeps every record (same names,
//! types, TTLs and data).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::txt::Parser;

use super::Zone;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The master file does not parse.
    #[error("{file}: {reason}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message.
        reason: String,
    },
    /// The zone holds data Roundel zone files cannot express.
    #[error("{file}: cannot import:\n{}", .problems.join("\n"))]
    Unsupported {
        /// The file.
        file: String,
        /// One line per record that cannot be imported.
        problems: Vec<String>,
    },
}

/// Converts the master file at `path` into Roundel zone-file text.
pub fn import_file(path: &Path, origin: Option<&str>) -> Result<String, ImportError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        file: file.clone(),
        source,
    })?;
    import(&text, path, origin)
}

/// Converts master-file text into Roundel zone-file text.
pub fn import(text: &str, path: &Path, origin: Option<&str>) -> Result<String, ImportError> {
    let file = path.display().to_string();
    let parse_error = |reason: String| ImportError::Parse {
        file: file.clone(),
        reason,
    };
    let origin = origin
        .map(|o| {
            Name::from_ascii(if o.ends_with('.') {
                o.to_owned()
            } else {
                format!("{o}.")
            })
        })
        .transpose()
        .map_err(|e| parse_error(format!("invalid --origin: {e}")))?;
    let (origin, sets) = Parser::new(text, Some(path.to_path_buf()), origin)
        .parse()
        .map_err(|e| parse_error(e.to_string()))?;

    // Group by owner name, keeping names as written.
    let mut names: BTreeMap<Name, Vec<(RecordType, u32, Vec<RData>)>> = BTreeMap::new();
    let mut soa = None;
    let mut problems = Vec::new();
    let mut ttl_count: HashMap<u32, usize> = HashMap::new();
    for (key, set) in &sets {
        let rtype = key.record_type;
        let records: Vec<_> = set.records_without_rrsigs().collect();
        let Some(first) = records.first() else {
            continue;
        };
        let owner = first.name.clone();
        let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(0);
        match rtype {
            RecordType::SOA => {
                if let RData::SOA(s) = &first.data {
                    soa = Some((ttl, s.clone()));
                }
                continue;
            }
            RecordType::A
            | RecordType::AAAA
            | RecordType::CNAME
            | RecordType::MX
            | RecordType::TXT
            | RecordType::SRV
            | RecordType::CAA
            | RecordType::PTR
            | RecordType::NS => {}
            other => {
                problems.push(format!(
                    "{owner} {other}: record type {other} is not supported by Roundel zone files"
                ));
                continue;
            }
        }
        *ttl_count.entry(ttl).or_default() += records.len();
        names.entry(owner).or_default().push((
            rtype,
            ttl,
            records.iter().map(|r| r.data.clone()).collect(),
        ));
    }
    let Some((soa_ttl, soa)) = soa else {
        return Err(ImportError::Unsupported {
            file,
            problems: vec!["the zone has no SOA record".into()],
        });
    };
    if !problems.is_empty() {
        return Err(ImportError::Unsupported { file, problems });
    }

    // The most common TTL becomes the file's default, so most names need none of their own.
    let default_ttl = ttl_count
        .iter()
        .max_by_key(|(ttl, n)| (**n, std::cmp::Reverse(**ttl)))
        .map_or(soa_ttl, |(t, _)| *t);
    let rel = |n: &Name| relative(n, &origin);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported from {} by `roundel import`.",
        path.display()
    );
    let _ = writeln!(out, "origin = {}", quote(&origin.to_string()));
    let _ = writeln!(out, "ttl = {default_ttl}");
    let _ = writeln!(out, "\n[soa]");
    let _ = writeln!(out, "mname = {}", quote(&rel(&soa.mname)));
    let _ = writeln!(out, "rname = {}", quote(&rel(&soa.rname)));
    let _ = writeln!(out, "serial = {}", soa.serial);
    let _ = writeln!(
        out,
        "refresh = {}\nretry = {}\nexpire = {}\nminimum = {}",
        soa.refresh, soa.retry, soa.expire, soa.minimum
    );
    if soa_ttl != default_ttl {
        let _ = writeln!(out, "ttl = {soa_ttl}");
    }

    // Apex first, then the other names in sorted order.
    let mut owners: Vec<&Name> = names.keys().collect();
    owners.sort_by_key(|n| (**n != origin, n.to_lowercase()));
    for owner in owners {
        let sets = &names[owner];
        let _ = writeln!(out, "\n[names.{}]", key(&rel(owner)));
        // One TTL shared by every set at the name is written once, for the name.
        let node_ttl = match sets.iter().map(|s| s.1).collect::<Vec<_>>().as_slice() {
            [first, rest @ ..] if rest.iter().all(|t| t == first) && *first != default_ttl => {
                Some(*first)
            }
            _ => None,
        };
        if let Some(t) = node_ttl {
            let _ = writeln!(out, "ttl = {t}");
        }
        for (rtype, ttl, datas) in sets {
            let items: Vec<String> = datas.iter().map(|d| import_item(d, &rel)).collect();
            let list = if *rtype == RecordType::CNAME
                || items.len() == 1 && !matches!(datas[0], RData::TXT(_))
            {
                items[0].clone()
            } else {
                format!("[{}]", items.join(", "))
            };
            if node_ttl.is_none() && *ttl != default_ttl {
                let _ = writeln!(out, "{rtype} = {{ ttl = {ttl}, data = {list} }}");
            } else {
                let _ = writeln!(out, "{rtype} = {list}");
            }
        }
    }
    Ok(out)
}

/// One record's data as a TOML value of a Roundel zone file.
fn import_item(data: &RData, rel: &dyn Fn(&Name) -> String) -> String {
    match data {
        RData::A(a) => quote(&a.to_string()),
        RData::AAAA(a) => quote(&a.to_string()),
        RData::CNAME(c) => quote(&rel(&c.0)),
        RData::NS(n) => quote(&rel(&n.0)),
        RData::PTR(p) => quote(&rel(&p.0)),
        RData::MX(mx) => quote(&format!("{} {}", mx.preference, rel(&mx.exchange))),
        RData::SRV(s) => quote(&format!(
            "{} {} {} {}",
            s.priority,
            s.weight,
            s.port,
            rel(&s.target)
        )),
        RData::TXT(txt) => {
            let parts: Vec<String> = txt
                .txt_data
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            // Roundel splits a long string at 255 bytes; a record that is exactly such a
            // split is written as one string, anything else keeps its parts.
            let split_long =
                parts.len() > 1 && parts[..parts.len() - 1].iter().all(|p| p.len() == 255);
            if parts.len() == 1 || split_long {
                quote(&parts.concat())
            } else {
                format!(
                    "[{}]",
                    parts
                        .iter()
                        .map(|p| quote(p))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }
        other => quote(&other.to_string()),
    }
}

/// `name` relative to `origin` ("@" for the origin itself), absolute with a dot otherwise.
fn relative(name: &Name, origin: &Name) -> String {
    if name == origin {
        return "@".into();
    }
    if origin.zone_of(name) && !origin.is_root() {
        let full = name.to_string();
        let suffix = format!(".{origin}");
        if let Some(rel) = full.strip_suffix(&suffix) {
            return rel.to_owned();
        }
    }
    name.to_string()
}

/// A TOML key: bare when it can be, quoted otherwise.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_owned()
    } else {
        quote(k)
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

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
                node.name,
                set.ttl,
                set.rtype,
                presentation(&rdata.data)
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
