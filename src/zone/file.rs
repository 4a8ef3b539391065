//! Zone files: TOML on disk, validated into [`Zone`]s.
//!
//! The format is documented in `docs/zone-format.md`. Parsing happens in two passes: serde
//! (with `deny_unknown_fields`) checks the shape and reports the first shape error with its
//! position; then every record is validated and every problem found is reported, each with
//! file, line, column and key, so one run of `roundel check` shows them all.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::UNIX_EPOCH;

use hickory_proto::rr::rdata::{CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::error::{SourceMap, ZoneError};
use super::model::{NameMap, Node, Rdata, RrSet, SerialPolicy, Zone, ZonePool};
use super::name::{is_within, key_of, name_of, parent, wire_of};

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
/// Longest character-string in a TXT record (RFC 1035 section 3.3).
const MAX_CHARACTER_STRING: usize = 255;
/// Record types a zone file may hold under `[names.*]`.
pub const RECORD_TYPES: [&str; 9] = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "PTR", "NS"];

// ---------------------------------------------------------------------------------------
// The raw shape, as serde sees it.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    origin: Option<Spanned<String>>,
    ttl: Option<Spanned<i64>>,
    soa: Option<Spanned<RawSoa>>,
    #[serde(default)]
    names: BTreeMap<Spanned<String>, Spanned<RawNode>>,
    #[serde(default)]
    checks: BTreeMap<Spanned<String>, crate::pool::RawCheck>,
    #[serde(default)]
    pools: BTreeMap<Spanned<String>, crate::pool::RawPool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSoa {
    mname: Spanned<String>,
    rname: Spanned<String>,
    serial: Option<Spanned<toml::Value>>,
    refresh: Option<Spanned<i64>>,
    retry: Option<Spanned<i64>>,
    expire: Option<Spanned<i64>>,
    minimum: Option<Spanned<i64>>,
    ttl: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct RawNode {
    ttl: Option<Spanned<i64>>,
    A: Option<Spanned<RawSet>>,
    AAAA: Option<Spanned<RawSet>>,
    CNAME: Option<Spanned<RawSet>>,
    MX: Option<Spanned<RawSet>>,
    TXT: Option<Spanned<RawSet>>,
    SRV: Option<Spanned<RawSet>>,
    CAA: Option<Spanned<RawSet>>,
    PTR: Option<Spanned<RawSet>>,
    NS: Option<Spanned<RawSet>>,
}

impl RawNode {
    fn sets(&self) -> [(RecordType, &Option<Spanned<RawSet>>); 9] {
        [
            (RecordType::A, &self.A),
            (RecordType::AAAA, &self.AAAA),
            (RecordType::CNAME, &self.CNAME),
            (RecordType::MX, &self.MX),
            (RecordType::TXT, &self.TXT),
            (RecordType::SRV, &self.SRV),
            (RecordType::CAA, &self.CAA),
            (RecordType::PTR, &self.PTR),
            (RecordType::NS, &self.NS),
        ]
    }
}

/// One RRset as written: `"x"`, `["x", "y"]` or `{ ttl = 60, data = ... }`.
struct RawSet {
    ttl: Option<Spanned<i64>>,
    /// Items with their spans; `None` span for the single-string form (use the set's span).
    items: Vec<(Option<Range<usize>>, RawItem)>,
    /// Written as a single string rather than an array.
    single: bool,
}

/// One record as written: a string, or (TXT only) an array of strings.
enum RawItem {
    Text(String),
    Parts(Vec<String>),
}

impl<'de> Deserialize<'de> for RawSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SetVisitor)
    }
}

struct SetVisitor;

impl<'de> Visitor<'de> for SetVisitor {
    type Value = RawSet;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, an array of strings, or a table { ttl = N, data = [...] }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSet, E> {
        Ok(RawSet {
            ttl: None,
            items: vec![(None, RawItem::Text(v.to_owned()))],
            single: true,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawSet, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawItem>>()? {
            let span = item.span();
            items.push((Some(span), item.into_inner()));
        }
        Ok(RawSet {
            ttl: None,
            items,
            single: false,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawSet, A::Error> {
        let mut ttl = None;
        let mut data: Option<Spanned<RawSet>> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "ttl" => ttl = Some(map.next_value::<Spanned<i64>>()?),
                "data" => data = Some(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, &["ttl", "data"])),
            }
        }
        let data = data.ok_or_else(|| de::Error::missing_field("data"))?;
        let span = data.span();
        let mut inner = data.into_inner();
        if inner.ttl.is_some() {
            return Err(de::Error::custom("`data` cannot itself be a table"));
        }
        for item in &mut inner.items {
            item.0.get_or_insert(span.clone());
        }
        Ok(RawSet {
            ttl,
            items: inner.items,
            single: inner.single,
        })
    }
}

impl<'de> Deserialize<'de> for RawItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = RawItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string (or, for TXT, an array of strings)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawItem, E> {
                Ok(RawItem::Text(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawItem, A::Error> {
                let mut parts = Vec::new();
                while let Some(p) = seq.next_element::<String>()? {
                    parts.push(p);
                }
                Ok(RawItem::Parts(parts))
            }
        }
        d.deserialize_any(ItemVisitor)
    }
}

// ---------------------------------------------------------------------------------------
// Validation.

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
    let mut map = SourceMap::new(path, text);
    let raw: RawZone = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let at = e.span().map_or(0, |s| s.start);
            map.report(at, "", e.message().trim().to_owned());
            return Err(map.into_errors());
        }
    };
    let zone = Builder::new(&mut map).build(raw, path, mtime);
    match zone {
        Some(zone) if !map.has_errors() => Ok(zone),
        _ => Err(map.into_errors()),
    }
}

/// An owner name with the position it was defined at.
struct Owner {
    name: Name,
    key: Box<[u8]>,
    at: usize,
    ttl: Option<u32>,
}

/// An NS target that must have an address because it lies inside the zone.
struct NsTarget {
    target: Box<[u8]>,
    at: usize,
    key: String,
}

struct Builder<'m, 'a> {
    map: &'m mut SourceMap<'a>,
    origin: Name,
    origin_key: Box<[u8]>,
}

impl<'m, 'a> Builder<'m, 'a> {
    fn new(map: &'m mut SourceMap<'a>) -> Self {
        Self {
            map,
            origin: Name::root(),
            origin_key: key_of(&Name::root()),
        }
    }

    fn build(mut self, raw: RawZone, path: &Path, mtime: Option<u64>) -> Option<Zone> {
        let Some(origin) = raw.origin else {
            self.map.report_file(
                "missing `origin`: the zone's apex name, e.g. origin = \"example.test.\"",
            );
            return None;
        };
        let origin_at = origin.span().start;
        let text = origin.get_ref().trim();
        if !text.ends_with('.') {
            self.map.report(
                origin_at,
                "origin",
                format!("origin must be an absolute name ending with a dot: \"{text}.\""),
            );
            return None;
        }
        self.origin = match check_name(text) {
            Ok(()) => match Name::from_ascii(text) {
                Ok(n) => n,
                Err(e) => {
                    self.map
                        .report(origin_at, "origin", format!("invalid name {text:?}: {e}"));
                    return None;
                }
            },
            Err(why) => {
                self.map.report(origin_at, "origin", why);
                return None;
            }
        };
        self.origin_key = key_of(&self.origin);

        let default_ttl = raw
            .ttl
            .as_ref()
            .and_then(|t| self.ttl(t, "ttl"))
            .unwrap_or(DEFAULT_TTL);

        let mut nodes: NameMap<Node> = NameMap::default();
        let mut seen: HashMap<Box<[u8]>, usize> = HashMap::new();
        let mut ns_targets = Vec::new();
        let mut owners = Vec::new();
        let mut pool_owners = Vec::new();

        for (key, node) in &raw.names {
            let key_text = format!("names.{}", toml_key(key.get_ref()));
            let Some(owner) = self.owner(key, &key_text) else {
                continue;
            };
            if let Some(&first) = seen.get(&owner.key) {
                let (line, _) = self.map.position(first);
                self.map.report(
                    owner.at,
                    &key_text,
                    format!("{} is already defined at line {line}", owner.name),
                );
                continue;
            }
            seen.insert(owner.key.clone(), owner.at);
            let node_ttl = node
                .get_ref()
                .ttl
                .as_ref()
                .and_then(|t| self.ttl(t, &format!("{key_text}.ttl")));
            let owner = Owner {
                ttl: node_ttl,
                ..owner
            };
            let rrsets = self.rrsets(&owner, node, &key_text, default_ttl, &mut ns_targets);
            owners.push((owner.key.clone(), owner.at, key_text.clone()));
            nodes.insert(
                owner.key.clone(),
                Node {
                    wire: wire_of(&owner.name),
                    name: owner.name,
                    rrsets: rrsets.into(),
                    cut: false,
                    pool: None,
                },
            );
        }

        // The SOA.
        let Some(soa) = raw.soa else {
            self.map
                .report_file("missing [soa] table: every zone needs mname and rname");
            return None;
        };
        let soa = soa.into_inner();
        let soa_ttl = soa
            .ttl
            .as_ref()
            .and_then(|t| self.ttl(t, "soa.ttl"))
            .unwrap_or(default_ttl);
        let mname = self.rdata_name(soa.mname.get_ref(), soa.mname.span().start, "soa.mname");
        let rname_text = soa.rname.get_ref().trim();
        // Accept the familiar e-mail form: hostmaster@example.test -> hostmaster.example.test.
        let rname_text = match rname_text.split_once('@') {
            Some((user, domain)) if !user.contains('.') => format!(
                "{user}.{}",
                if domain.ends_with('.') {
                    domain.to_owned()
                } else {
                    format!("{domain}.")
                }
            ),
            _ => rname_text.to_owned(),
        };
        let rname = self.rdata_name(&rname_text, soa.rname.span().start, "soa.rname");
        let serial_policy = match &soa.serial {
            None => SerialPolicy::Auto,
            Some(s) => match s.get_ref() {
                toml::Value::String(v) if v == "auto" => SerialPolicy::Auto,
                toml::Value::Integer(v) if (0..=u32::MAX as i64).contains(v) => {
                    SerialPolicy::Fixed(*v as u32)
                }
                other => {
                    self.map.report(s.span().start, "soa.serial", format!("serial must be \"auto\" or an integer from 0 to 4294967295, not {other}"));
                    SerialPolicy::Auto
                }
            },
        };
        let refresh = self.soa_timer(&soa.refresh, "soa.refresh", DEFAULT_REFRESH);
        let retry = self.soa_timer(&soa.retry, "soa.retry", DEFAULT_RETRY);
        let expire = self.soa_timer(&soa.expire, "soa.expire", DEFAULT_EXPIRE);
        let minimum = self.soa_timer(&soa.minimum, "soa.minimum", DEFAULT_MINIMUM);

        // Pools: a pool is a name whose A and AAAA answers come from its healthy nodes. It
        // may share its name with other types (TXT, MX...), but not with addresses or a CNAME.
        let pool_at: HashMap<String, usize> = raw
            .pools
            .keys()
            .map(|k| (k.get_ref().clone(), k.span().start))
            .collect();
        let specs = crate::pool::validate(self.map, &self.origin, raw.checks, raw.pools);
        let mut pools = Vec::new();
        for spec in specs {
            let at = pool_at.get(&spec.key).copied().unwrap_or(0);
            let key_text = format!("pools.{}", toml_key(&spec.key));
            let key = key_of(&spec.name);
            if let Some(node) = nodes.get(&key)
                && let Some(other) = node.rrsets.iter().find(|s| {
                    matches!(
                        s.rtype,
                        RecordType::A | RecordType::AAAA | RecordType::CNAME
                    )
                })
            {
                self.map.report(
                    at,
                    &key_text,
                    format!(
                        "{} is a pool, so it cannot also have {} records under [names]",
                        spec.name, other.rtype
                    ),
                );
                continue;
            }
            let rdata = spec
                .nodes
                .iter()
                .map(|n| {
                    Rdata::new(match n.addr {
                        std::net::IpAddr::V4(a) => RData::A(a.into()),
                        std::net::IpAddr::V6(a) => RData::AAAA(a.into()),
                    })
                })
                .collect();
            let node = nodes.entry(key).or_insert_with(|| Node {
                wire: wire_of(&spec.name),
                name: spec.name.clone(),
                rrsets: Box::new([]),
                cut: false,
                pool: None,
            });
            node.pool = Some(pools.len());
            pool_owners.push((key_of(&spec.name), at, key_text));
            pools.push(ZonePool {
                position: self.map.position(at),
                spec,
                rdata,
                runtime: None,
            });
        }

        // Empty non-terminals: every name between a defined name and the apex exists
        // (RFC 4592 section 2.2.2), so that it answers NODATA rather than NXDOMAIN and stops
        // wildcard matching.
        let keys: Vec<Box<[u8]>> = nodes.keys().cloned().collect();
        for key in keys {
            let mut up = parent(&key);
            while let Some(p) = up {
                if !is_within(p, &self.origin_key) {
                    break;
                }
                if !nodes.contains_key(p) {
                    let name = name_of(p);
                    nodes.insert(
                        p.into(),
                        Node {
                            wire: wire_of(&name),
                            name,
                            rrsets: Box::new([]),
                            cut: false,
                            pool: None,
                        },
                    );
                }
                up = parent(p);
            }
        }
        if !nodes.contains_key(&self.origin_key) {
            nodes.insert(
                self.origin_key.clone(),
                Node {
                    name: self.origin.clone(),
                    wire: wire_of(&self.origin),
                    rrsets: Box::new([]),
                    cut: false,
                    pool: None,
                },
            );
        }

        // Apex NS, zone cuts, and what may live below them.
        if nodes[&self.origin_key].rrset(RecordType::NS).is_none() {
            self.map.report(origin_at, "names.\"@\".NS", "the zone apex has no NS records; list the zone's name servers under [names.\"@\"] NS = [...]");
        }
        let mut has_cuts = false;
        for (key, node) in nodes.iter_mut() {
            if **key != *self.origin_key && node.rrset(RecordType::NS).is_some() {
                node.cut = true;
                has_cuts = true;
            }
        }
        for (key, at, key_text) in &owners {
            let node = &nodes[key];
            if node.cut
                && let Some(other) = node.rrsets.iter().find(|s| s.rtype != RecordType::NS)
            {
                self.map.report(*at, key_text, format!("{} is a delegation (it has NS records) and can hold nothing but NS, not {}", node.name, other.rtype));
            }
            let mut up = parent(key);
            while let Some(p) = up {
                if *p == *self.origin_key || !is_within(p, &self.origin_key) {
                    break;
                }
                if nodes.get(p).is_some_and(|n| n.cut) {
                    if let Some(other) = node
                        .rrsets
                        .iter()
                        .find(|s| !matches!(s.rtype, RecordType::A | RecordType::AAAA))
                    {
                        self.map.report(*at, key_text, format!("{} is below the delegation {}: only glue (A, AAAA) may be written there, not {}", node.name, name_of(p), other.rtype));
                    }
                    break;
                }
                up = parent(p);
            }
        }
        for (key, at, key_text) in &pool_owners {
            let node = &nodes[key];
            let mut up = Some(&key[..]);
            while let Some(p) = up {
                if *p == *self.origin_key || !is_within(p, &self.origin_key) {
                    break;
                }
                if nodes.get(p).is_some_and(|n| n.cut) {
                    self.map.report(
                        *at,
                        key_text,
                        format!(
                            "pool {} is at or below the delegation {}",
                            node.name,
                            name_of(p)
                        ),
                    );
                    break;
                }
                up = parent(p);
            }
        }
        for t in &ns_targets {
            let has_address = nodes.get(&t.target).is_some_and(|n| {
                n.rrset(RecordType::A).is_some() || n.rrset(RecordType::AAAA).is_some()
            });
            if !has_address {
                self.map.report(
                    t.at,
                    &t.key,
                    format!(
                        "name server {} is inside the zone but has no A or AAAA record (glue)",
                        name_of(&t.target)
                    ),
                );
            }
        }

        let (Some(mname), Some(rname)) = (mname, rname) else {
            return None;
        };
        let serial = match serial_policy {
            SerialPolicy::Fixed(s) => s,
            SerialPolicy::Auto => mtime.map_or(1, |t| t as u32),
        };
        let soa = SOA::new(
            mname,
            rname,
            serial,
            refresh as i32,
            retry as i32,
            expire as i32,
            minimum,
        );
        let apex = nodes
            .get_mut(&self.origin_key)
            .expect("apex inserted above");
        let mut sets = std::mem::take(&mut apex.rrsets).into_vec();
        sets.insert(
            0,
            RrSet {
                rtype: RecordType::SOA,
                ttl: soa_ttl,
                records: Box::new([Rdata::new(RData::SOA(soa))]),
            },
        );
        apex.rrsets = sets.into();

        let has_wildcards = nodes.keys().any(|k| k.starts_with(b"\x01*"));
        let content_digest = digest(&nodes, &pools);
        Some(Zone {
            origin: self.origin.clone(),
            origin_position: self.map.position(origin_at),
            origin_key: self.origin_key.clone(),
            file: path.to_path_buf(),
            default_ttl,
            soa_ttl,
            negative_ttl: soa_ttl.min(minimum),
            serial_policy,
            content_digest,
            nodes,
            has_cuts,
            has_wildcards,
            pools,
            stats: Default::default(),
        })
    }

    /// Resolves an owner-name key of `[names]`.
    fn owner(&mut self, key: &Spanned<String>, key_text: &str) -> Option<Owner> {
        let at = key.span().start;
        let text = key.get_ref().trim();
        let name = self.name(text, at, key_text, true)?;
        if !self.origin.zone_of(&name) {
            self.map.report(
                at,
                key_text,
                format!("{name} is outside the zone origin {}", self.origin),
            );
            return None;
        }
        Some(Owner {
            key: key_of(&name),
            name,
            at,
            ttl: None,
        })
    }

    /// Parses a name relative to the origin ("@" is the origin; a trailing dot makes it absolute).
    fn name(&mut self, text: &str, at: usize, key: &str, owner: bool) -> Option<Name> {
        if text == "@" {
            return Some(self.origin.clone());
        }
        if let Err(why) = check_name(text) {
            self.map.report(at, key, why);
            return None;
        }
        if !owner && text.split('.').next() == Some("*") {
            self.map.report(
                at,
                key,
                format!("{text:?}: a wildcard can only be an owner name"),
            );
            return None;
        }
        let parsed = Name::from_ascii(text).and_then(|n| {
            if text.ends_with('.') {
                Ok(n)
            } else {
                n.append_domain(&self.origin)
            }
        });
        match parsed {
            Ok(mut n) => {
                n.set_fqdn(true);
                Some(n)
            }
            Err(e) => {
                self.map
                    .report(at, key, format!("invalid name {text:?}: {e}"));
                None
            }
        }
    }

    fn rdata_name(&mut self, text: &str, at: usize, key: &str) -> Option<Name> {
        self.name(text.trim(), at, key, false)
    }

    fn ttl(&mut self, t: &Spanned<i64>, key: &str) -> Option<u32> {
        let v = *t.get_ref();
        if (0..=MAX_TTL as i64).contains(&v) {
            Some(v as u32)
        } else {
            self.map.report(
                t.span().start,
                key,
                format!("TTL {v} is out of range (0 to {MAX_TTL} seconds)"),
            );
            None
        }
    }

    fn soa_timer(&mut self, t: &Option<Spanned<i64>>, key: &str, default: u32) -> u32 {
        t.as_ref().and_then(|t| self.ttl(t, key)).unwrap_or(default)
    }

    fn rrsets(
        &mut self,
        owner: &Owner,
        node: &Spanned<RawNode>,
        key_text: &str,
        default_ttl: u32,
        ns_targets: &mut Vec<NsTarget>,
    ) -> Vec<RrSet> {
        let mut out = Vec::new();
        let node_at = node.span().start;
        let raw = node.get_ref();
        for (rtype, set) in raw.sets() {
            let Some(set) = set else { continue };
            let set_key = format!("{key_text}.{rtype}");
            let set_at = set.span().start;
            let set = set.get_ref();
            let ttl = set
                .ttl
                .as_ref()
                .and_then(|t| self.ttl(t, &format!("{set_key}.ttl")))
                .or(owner.ttl)
                .unwrap_or(default_ttl);
            if set.items.is_empty() {
                self.map.report(
                    set_at,
                    &set_key,
                    "empty record list: remove the key or give at least one record",
                );
                continue;
            }
            if rtype == RecordType::CNAME && set.items.len() != 1 {
                self.map.report(
                    set_at,
                    &set_key,
                    "a name can have only one CNAME (RFC 1034 section 3.6.2)",
                );
                continue;
            }
            let mut records: Vec<Rdata> = Vec::new();
            for (i, (span, item)) in set.items.iter().enumerate() {
                let at = span.as_ref().map_or(set_at, |s| s.start);
                let item_key = if set.single {
                    set_key.clone()
                } else {
                    format!("{set_key}[{i}]")
                };
                let Some(data) = self.rdata(rtype, item, at, &item_key) else {
                    continue;
                };
                if let RData::NS(ns) = &data {
                    let target = key_of(&ns.0);
                    if is_within(&target, &self.origin_key) {
                        ns_targets.push(NsTarget {
                            target,
                            at,
                            key: item_key.clone(),
                        });
                    }
                }
                let rdata = match Rdata::try_new(data) {
                    Ok(r) => r,
                    Err(e) => {
                        self.map.report(at, &item_key, e.to_string());
                        continue;
                    }
                };
                if records
                    .iter()
                    .any(|r| r.wire.eq_ignore_ascii_case(&rdata.wire))
                {
                    self.map
                        .report(at, &item_key, format!("duplicate {rtype} record"));
                    continue;
                }
                records.push(rdata);
            }
            if let Err(why) = super::limits::check_rrset(owner.key.len(), &records) {
                self.map.report(set_at, &set_key, why);
                continue;
            }
            if !records.is_empty() {
                out.push(RrSet {
                    rtype,
                    ttl,
                    records: records.into(),
                });
            }
        }
        if out.iter().any(|s| s.rtype == RecordType::CNAME) {
            if owner.key == self.origin_key {
                self.map.report(
                    node_at,
                    key_text,
                    "the zone apex cannot be a CNAME: it must hold the SOA and NS records",
                );
            } else if let Some(other) = out.iter().find(|s| s.rtype != RecordType::CNAME) {
                self.map.report(node_at, key_text, format!("{} has a CNAME and {} records: a CNAME cannot coexist with other data (RFC 1034 section 3.6.2)", owner.name, other.rtype));
            }
        }
        if out.is_empty() && raw.sets().iter().all(|(_, s)| s.is_none()) {
            self.map.report(
                node_at,
                key_text,
                format!(
                    "no records: give at least one of {}",
                    RECORD_TYPES.join(", ")
                ),
            );
        }
        out
    }

    fn rdata(&mut self, rtype: RecordType, item: &RawItem, at: usize, key: &str) -> Option<RData> {
        let text = match item {
            RawItem::Text(t) => t.as_str(),
            RawItem::Parts(parts) => {
                if rtype != RecordType::TXT {
                    self.map.report(
                        at,
                        key,
                        format!("{rtype} data is a string, not an array of strings"),
                    );
                    return None;
                }
                if let Some(p) = parts.iter().find(|p| p.len() > MAX_CHARACTER_STRING) {
                    self.map.report(at, key, format!("a TXT string in an explicit list can be at most {MAX_CHARACTER_STRING} bytes, this one is {}; write it as one string and Roundel splits it", p.len()));
                    return None;
                }
                return Some(RData::TXT(TXT::new(parts.clone())));
            }
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let want = |n: usize, form: &str, map: &mut SourceMap| -> bool {
            if fields.len() == n {
                true
            } else {
                map.report(
                    at,
                    key,
                    format!("{rtype} data must be \"{form}\", not {text:?}"),
                );
                false
            }
        };
        match rtype {
            RecordType::A => match Ipv4Addr::from_str(text.trim()) {
                Ok(a) => Some(RData::A(a.into())),
                Err(_) => self.bad(at, key, format!("not an IPv4 address: {text:?}")),
            },
            RecordType::AAAA => match Ipv6Addr::from_str(text.trim()) {
                Ok(a) => Some(RData::AAAA(a.into())),
                Err(_) => self.bad(at, key, format!("not an IPv6 address: {text:?}")),
            },
            RecordType::CNAME => self
                .rdata_name(text, at, key)
                .map(|n| RData::CNAME(CNAME(n))),
            RecordType::NS => self.rdata_name(text, at, key).map(|n| RData::NS(NS(n))),
            RecordType::PTR => self.rdata_name(text, at, key).map(|n| RData::PTR(PTR(n))),
            RecordType::MX => {
                if !want(2, "preference exchange", self.map) {
                    return None;
                }
                let pref = self.number::<u16>(fields[0], at, key, "MX preference")?;
                let exchange = self.rdata_name(fields[1], at, key)?;
                Some(RData::MX(MX::new(pref, exchange)))
            }
            RecordType::SRV => {
                if !want(4, "priority weight port target", self.map) {
                    return None;
                }
                let priority = self.number::<u16>(fields[0], at, key, "SRV priority")?;
                let weight = self.number::<u16>(fields[1], at, key, "SRV weight")?;
                let port = self.number::<u16>(fields[2], at, key, "SRV port")?;
                let target = self.rdata_name(fields[3], at, key)?;
                Some(RData::SRV(SRV::new(priority, weight, port, target)))
            }
            RecordType::CAA => match RData::try_from_str(RecordType::CAA, text) {
                Ok(d) => Some(d),
                Err(e) => self.bad(
                    at,
                    key,
                    format!("CAA data must be \"flags tag \\\"value\\\"\": {e}"),
                ),
            },
            RecordType::TXT => {
                // A long string becomes several character-strings of one record (RFC 7208
                // section 3.3 concatenates them again).
                let bytes = text.as_bytes();
                let chunks: Vec<String> = if bytes.is_empty() {
                    vec![String::new()]
                } else {
                    split_utf8(text, MAX_CHARACTER_STRING)
                };
                Some(RData::TXT(TXT::new(chunks)))
            }
            _ => self.bad(at, key, format!("record type {rtype} is not supported")),
        }
    }

    fn number<T: FromStr>(&mut self, text: &str, at: usize, key: &str, what: &str) -> Option<T> {
        match text.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => self.bad(
                at,
                key,
                format!("{what} must be a number from 0 to 65535, not {text:?}"),
            ),
        }
    }

    fn bad<T>(&mut self, at: usize, key: &str, why: String) -> Option<T> {
        self.map.report(at, key, why);
        None
    }
}

/// Splits `text` into pieces of at most `max` bytes without cutting a UTF-8 character.
fn split_utf8(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        out.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    out
}

/// Host-name-like syntax check, stricter than the wire format allows, to catch typos:
/// letters, digits, `-`, `_`, `/` (RFC 2317 reverse zones) and `*` as a whole first label.
fn check_name(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty name".into());
    }
    if text == "." {
        return Ok(());
    }
    let body = text.strip_suffix('.').unwrap_or(text);
    for (i, label) in body.split('.').enumerate() {
        if label.is_empty() {
            return Err(format!(
                "{text:?} has an empty label (two dots in a row, or a leading dot)"
            ));
        }
        if label.len() > 63 {
            return Err(format!(
                "{text:?}: the label {label:?} is longer than 63 bytes"
            ));
        }
        if label == "*" {
            if i > 0 {
                return Err(format!(
                    "{text:?}: '*' is only allowed as the whole first label"
                ));
            }
            continue;
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/')))
        {
            return Err(format!("{text:?}: invalid character {c:?} in a name"));
        }
    }
    if body.len() + 2 > super::name::MAX_NAME_LEN {
        return Err(format!("{text:?} is longer than 255 bytes"));
    }
    Ok(())
}

/// A TOML key as it would be written in a dotted path.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_owned()
    } else {
        format!("{k:?}")
    }
}

/// A digest of the zone's data, independent of map order, ignoring the SOA serial.
fn digest(nodes: &NameMap<Node>, pools: &[ZonePool]) -> u64 {
    let mut keys: Vec<&Box<[u8]>> = nodes.keys().collect();
    keys.sort();
    let mut h = std::hash::DefaultHasher::new();
    for k in keys {
        k.hash(&mut h);
        for set in nodes[k].rrsets.iter() {
            u16::from(set.rtype).hash(&mut h);
            set.ttl.hash(&mut h);
            for r in set.records.iter() {
                match &r.data {
                    RData::SOA(soa) => (
                        soa.mname.to_string(),
                        soa.rname.to_string(),
                        soa.refresh,
                        soa.retry,
                        soa.expire,
                        soa.minimum,
                    )
                        .hash(&mut h),
                    _ => r.wire.hash(&mut h),
                }
            }
        }
    }
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
