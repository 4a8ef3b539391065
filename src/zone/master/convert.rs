//! Records read from a master file, written as a Roundel zone file, and proven equal.
//!
//! The zone's origin is `--origin` when given, otherwise the owner of its SOA record (never
//! a `$ORIGIN` that happens to come last). Anything the TOML cannot express exactly is an
//! error naming the file and line. The text written is then loaded by Roundel's own zone
//! loader and every RRset compared, wire byte for wire byte, with what was read: an import
//! either reproduces the source or fails.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use super::dname::DName;
use super::rdata::{Data, MAX_CHARACTER_STRING, SoaData};
use super::reader::{Loc, Record};
use super::{ImportError, Problem};
use crate::source::toml_key;

/// One RRset as read.
struct Set {
    loc: Loc,
    rtype: &'static str,
    ttl: u32,
    records: Vec<Record>,
}

/// One owner name and its RRsets, in file order.
struct Owner {
    name: DName,
    sets: Vec<Set>,
}

/// Converts `records` (read from `path`) into Roundel zone-file text.
pub fn to_toml(
    path: &Path,
    records: Vec<Record>,
    origin: Option<DName>,
) -> Result<String, ImportError> {
    let file = path.display().to_string();
    let mut problems = Vec::new();
    let soas: Vec<&Record> = records
        .iter()
        .filter(|r| matches!(r.data, Data::Soa(_)))
        .collect();
    let soa = match soas.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(ImportError::Problems(vec![Problem {
                file,
                line: 0,
                reason: "the zone has no SOA record".into(),
            }]));
        }
        [_, more @ ..] => {
            return Err(ImportError::Problems(
                more.iter()
                    .map(|r| r.loc.problem("a second SOA record: a zone has exactly one"))
                    .collect(),
            ));
        }
    };
    let origin = origin.unwrap_or_else(|| soa.owner.clone());
    if soa.owner.key() != origin.key() {
        return Err(ImportError::Problems(vec![soa.loc.problem(format!(
            "the SOA is owned by {}, but the origin is {}: the SOA must be at the zone apex",
            soa.owner.display(),
            origin.display()
        ))]));
    }
    let Data::Soa(soa_data) = &soa.data else {
        unreachable!("filtered on SOA above")
    };

    // Group into owners and RRsets, in file order.
    let mut owners: Vec<Owner> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    for r in records {
        if !r.owner.is_within(&origin) {
            problems.push(r.loc.problem(format!(
                "{} is outside the zone {}",
                r.owner.display(),
                origin.display()
            )));
            continue;
        }
        let at = *index.entry(r.owner.key()).or_insert_with(|| {
            owners.push(Owner {
                name: r.owner.clone(),
                sets: Vec::new(),
            });
            owners.len() - 1
        });
        let owner = &mut owners[at];
        let rtype = r.data.rtype();
        match owner.sets.iter_mut().find(|s| s.rtype == rtype) {
            Some(set) => {
                if set.ttl != r.ttl {
                    problems.push(r.loc.problem(format!(
                        "{} {rtype} has TTL {} here and {} at line {}: the records of an RRset share one TTL (RFC 2181 section 5.2); make them equal",
                        r.owner.display(),
                        r.ttl,
                        set.ttl,
                        set.loc.line
                    )));
                    continue;
                }
                // An exact duplicate is the same record (RFC 2181 section 5): servers keep one.
                if set.records.iter().any(|x| x.data.wire() == r.data.wire()) {
                    continue;
                }
                set.records.push(r);
            }
            None => owner.sets.push(Set {
                loc: r.loc.clone(),
                rtype,
                ttl: r.ttl,
                records: vec![r],
            }),
        }
    }

    let text = write(path, &origin, &soa, soa_data, &owners, &mut problems);
    if !problems.is_empty() {
        return Err(ImportError::Problems(problems));
    }
    verify(path, &text, &owners)?;
    Ok(text)
}

/// The TOML text; problems for data it cannot hold.
fn write(
    path: &Path,
    origin: &DName,
    soa: &Record,
    soa_data: &SoaData,
    owners: &[Owner],
    problems: &mut Vec<Problem>,
) -> String {
    let bad_names = std::cell::RefCell::new(Vec::new());
    let name_text = |n: &DName, loc: &Loc| match n.roundel_text(origin) {
        Ok(t) => t,
        Err(why) => {
            bad_names.borrow_mut().push(loc.problem(why));
            String::new()
        }
    };
    // The most common TTL becomes the file's default, so most names need none of their own.
    let mut ttl_count: BTreeMap<u32, usize> = BTreeMap::new();
    for s in owners
        .iter()
        .flat_map(|o| &o.sets)
        .filter(|s| s.rtype != "SOA")
    {
        *ttl_count.entry(s.ttl).or_default() += s.records.len();
    }
    let default_ttl = ttl_count
        .iter()
        .max_by_key(|(ttl, n)| (**n, std::cmp::Reverse(**ttl)))
        .map_or(soa.ttl, |(t, _)| *t);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported from {} by `roundel import`.",
        path.display()
    );
    let _ = writeln!(out, "origin = {}", quote(&origin.display()));
    let _ = writeln!(out, "ttl = {default_ttl}");
    let _ = writeln!(out, "\n[soa]");
    let mname = name_text(&soa_data.mname, &soa.loc);
    let rname = name_text(&soa_data.rname, &soa.loc);
    let _ = writeln!(out, "mname = {}", quote(&mname));
    let _ = writeln!(out, "rname = {}", quote(&rname));
    let _ = writeln!(out, "serial = {}", soa_data.serial);
    let [refresh, retry, expire, minimum] = soa_data.timers;
    let _ = writeln!(
        out,
        "refresh = {refresh}\nretry = {retry}\nexpire = {expire}\nminimum = {minimum}"
    );
    if soa.ttl != default_ttl {
        let _ = writeln!(out, "ttl = {}", soa.ttl);
    }

    // Apex first, then the other names in file order.
    let mut order: Vec<&Owner> = owners.iter().collect();
    order.sort_by_key(|o| o.name.key() != origin.key());
    for owner in order {
        let sets: Vec<&Set> = owner.sets.iter().filter(|s| s.rtype != "SOA").collect();
        if sets.is_empty() {
            continue;
        }
        let key = name_text(&owner.name, &sets[0].loc);
        let _ = writeln!(out, "\n[names.{}]", toml_key(&key));
        // One TTL shared by every set at the name is written once, for the name.
        let node_ttl = match sets.iter().map(|s| s.ttl).collect::<Vec<_>>().as_slice() {
            [first, rest @ ..] if rest.iter().all(|t| t == first) && *first != default_ttl => {
                Some(*first)
            }
            _ => None,
        };
        if let Some(t) = node_ttl {
            let _ = writeln!(out, "ttl = {t}");
        }
        for set in sets {
            let mut items = Vec::new();
            for r in &set.records {
                match item(&r.data, &name_text, &r.loc) {
                    Ok(i) => items.push(i),
                    Err(why) => problems.push(r.loc.problem(why)),
                }
            }
            let list = if items.len() == 1 && set.rtype != "TXT" {
                items[0].clone()
            } else {
                format!("[{}]", items.join(", "))
            };
            if node_ttl.is_none() && set.ttl != default_ttl {
                let _ = writeln!(
                    out,
                    "{} = {{ ttl = {}, data = {list} }}",
                    set.rtype, set.ttl
                );
            } else {
                let _ = writeln!(out, "{} = {list}", set.rtype);
            }
        }
    }
    problems.append(&mut bad_names.into_inner());
    out
}

/// One record's data as a TOML value of a Roundel zone file.
fn item(data: &Data, name: &impl Fn(&DName, &Loc) -> String, loc: &Loc) -> Result<String, String> {
    Ok(match data {
        Data::A(a) => quote(&a.to_string()),
        Data::Aaaa(a) => quote(&a.to_string()),
        Data::Ns(n) | Data::Cname(n) | Data::Ptr(n) => quote(&name(n, loc)),
        Data::Mx(p, n) => quote(&format!("{p} {}", name(n, loc))),
        Data::Srv(p, w, port, n) => quote(&format!("{p} {w} {port} {}", name(n, loc))),
        Data::Txt(parts) => {
            let strs = parts
                .iter()
                .map(|p| {
                    String::from_utf8(p.clone()).map_err(|_| {
                        "a TXT string holds bytes that are not UTF-8 text, which a Roundel zone file (TOML) cannot express".to_string()
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            // Roundel splits one long string at 255 bytes (never inside a UTF-8 character):
            // a record that is exactly such a split is written as one string, which reads
            // back identically; anything else keeps its strings as they are.
            let last = strs.len() - 1;
            let split_long = strs.len() > 1
                && strs[..last].iter().all(|p| p.len() == MAX_CHARACTER_STRING)
                && !strs[last].is_empty();
            if strs.len() == 1 || split_long {
                quote(&strs.concat())
            } else {
                format!(
                    "[{}]",
                    strs.iter().map(|p| quote(p)).collect::<Vec<_>>().join(", ")
                )
            }
        }
        Data::Caa(flags, tag, value) => {
            let value = String::from_utf8(value.clone())
                .map_err(|_| "a CAA value holds bytes that are not UTF-8 text".to_string())?;
            if value.contains(['"', '\\']) || value.chars().any(char::is_control) {
                return Err("a CAA value with quotes, backslashes or control characters cannot be written in a Roundel zone file".into());
            }
            quote(&format!(
                "{flags} {} \"{value}\"",
                String::from_utf8_lossy(tag)
            ))
        }
        Data::Soa(_) => unreachable!("the SOA is written in [soa]"),
    })
}

/// Loads `text` with Roundel's own zone loader and compares every RRset with `owners`.
fn verify(path: &Path, text: &str, owners: &[Owner]) -> Result<(), ImportError> {
    let zone = crate::zone::file::parse_zone(path, text, None).map_err(|errors| {
        ImportError::Rejected {
            file: path.display().to_string(),
            errors: crate::zone::ZoneErrors(errors),
        }
    })?;
    let mut problems = Vec::new();
    let mut expected_sets = 0;
    for owner in owners {
        let node = zone.nodes.get(owner.name.key().as_slice());
        for set in &owner.sets {
            expected_sets += 1;
            let mut want: Vec<Vec<u8>> = set.records.iter().map(|r| r.data.wire()).collect();
            want.sort();
            let got = node.and_then(|n| {
                n.rrsets
                    .iter()
                    .find(|s| s.rtype.to_string() == set.rtype)
                    .map(|s| {
                        let mut w: Vec<Vec<u8>> =
                            s.records.iter().map(|r| r.wire.to_vec()).collect();
                        w.sort();
                        (s.ttl, w)
                    })
            });
            if got.as_ref() != Some(&(set.ttl, want)) {
                problems.push(set.loc.problem(format!(
                    "{} {}: the Roundel zone file would not hold exactly this data ({})",
                    owner.name.display(),
                    set.rtype,
                    match got {
                        None => "it would be missing".to_string(),
                        Some((ttl, _)) if ttl != set.ttl => format!("TTL {ttl}"),
                        Some(_) => "different record data".to_string(),
                    }
                )));
            }
        }
    }
    let served_sets: usize = zone
        .nodes
        .values()
        .filter(|n| !n.rrsets.is_empty())
        .map(|n| n.rrsets.len())
        .sum();
    if problems.is_empty() && served_sets != expected_sets {
        problems.push(Problem {
            file: path.display().to_string(),
            line: 0,
            reason: format!(
                "the Roundel zone file would hold {served_sets} RRsets, the source {expected_sets}"
            ),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ImportError::Problems(problems))
    }
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
