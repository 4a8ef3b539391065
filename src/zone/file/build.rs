//! The validating builder: one zone file's raw shape into a [`Zone`], step by step
//! (origin, names, SOA, pools, empty non-terminals, delegations, glue), each step
//! reporting every problem it finds to the source map.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, RecordType};
use toml::Spanned;

use super::apart::Batch;
use super::defined::DefinedNames;
use super::key_path::{NameKey, Part};
use super::names::parse_name;
use super::raw::{RawNode, RawSoa, RawZone};
use super::{
    DEFAULT_EXPIRE, DEFAULT_MINIMUM, DEFAULT_REFRESH, DEFAULT_RETRY, DEFAULT_TTL, MAX_TTL, digest,
};
use crate::source::SourceMap;
use crate::source::toml_key;
use crate::zone::model::{Node, NodeTable, Rdata, RrSet, SerialPolicy, Zone, ZonePool};
use crate::zone::name::{is_within, key_of, name_of, parent, wire_of};

/// An owner name with the position it was defined at.
pub(super) struct Owner {
    /// Lowercase wire form: the lookup key.
    pub(super) key: Box<[u8]>,
    /// Wire form as written.
    pub(super) wire: Box<[u8]>,
    pub(super) at: usize,
    pub(super) ttl: Option<u32>,
}

/// An NS target that must have an address because it lies inside the zone.
pub(super) struct NsTarget {
    pub(super) target: Box<[u8]>,
    pub(super) at: usize,
    pub(super) key: String,
}

pub(super) struct Builder<'m, 'a> {
    pub(super) map: &'m mut SourceMap<'a>,
    pub(super) origin: Name,
    pub(super) origin_key: Box<[u8]>,
    /// The origin in wire form as written (owner names relative to it end with it).
    pub(super) origin_wire: Box<[u8]>,
}

impl<'m, 'a> Builder<'m, 'a> {
    pub(super) fn new(map: &'m mut SourceMap<'a>) -> Self {
        Self {
            map,
            origin: Name::root(),
            origin_key: key_of(&Name::root()),
            origin_wire: wire_of(&Name::root()),
        }
    }
}

/// Where a name was defined: its key, its position and its key path (for errors).
pub(super) type Defined = (Box<[u8]>, usize, String);

/// What `[names]` gave.
struct Names {
    nodes: NodeTable,
    owners: DefinedNames,
    ns_targets: Vec<NsTarget>,
}

/// The `[soa]` table, validated.
struct SoaFields {
    ttl: u32,
    mname: Option<Name>,
    rname: Option<Name>,
    serial_policy: SerialPolicy,
    refresh: u32,
    retry: u32,
    expire: u32,
    minimum: u32,
}

impl Builder<'_, '_> {
    /// Validates a whole zone file; `None` when something essential is missing (every
    /// problem found is in the source map either way).
    /// The names of `[names.NAME]` tables come from `more`, a batch at a time (see
    /// `super::apart`), `names` of them in all; the rest of the file is `raw`.
    pub(super) fn build(
        mut self,
        raw: RawZone,
        more: &mut dyn Iterator<Item = Batch>,
        names: usize,
        path: &Path,
        mtime: Option<u64>,
    ) -> Option<Zone> {
        let origin_at = self.origin(raw.origin)?;
        let default_ttl = raw
            .ttl
            .as_ref()
            .and_then(|t| self.ttl(t, "ttl"))
            .unwrap_or(DEFAULT_TTL);
        let Names {
            mut nodes,
            owners,
            ns_targets,
        } = self.names(&raw.names, more, names, default_ttl);
        let Some(soa) = raw.soa else {
            self.map
                .report_file("missing [soa] table: every zone needs mname and rname");
            return None;
        };
        let soa = self.soa(soa.into_inner(), default_ttl);
        let (pools, pool_owners) = self.pools(raw.checks, raw.pools, &mut nodes);
        self.add_empty_non_terminals(&mut nodes);
        let has_cuts = self.delegations(origin_at, &mut nodes, &owners, &pool_owners);
        self.check_glue(&nodes, &ns_targets);
        self.insert_soa(&mut nodes, &soa, mtime)?;

        nodes.shrink_to_fit();
        let has_wildcards = nodes.keys().any(|k| k.starts_with(b"\x01*"));
        let content_digest = digest(&nodes, &pools);
        let mut zone = Zone {
            origin: self.origin.clone(),
            origin_position: self.map.position(origin_at),
            origin_key: self.origin_key.clone(),
            file: path.to_path_buf(),
            default_ttl,
            soa_ttl: soa.ttl,
            negative_ttl: soa.ttl.min(soa.minimum),
            serial_policy: soa.serial_policy,
            content_digest,
            nodes,
            has_cuts,
            has_wildcards,
            pools,
            negative: Default::default(),
            index: 0,
        };
        crate::zone::prepared::prepare_zone(&mut zone);
        Some(zone)
    }

    /// Reads `origin`, the zone's apex; returns where it is written.
    fn origin(&mut self, origin: Option<Spanned<String>>) -> Option<usize> {
        let Some(origin) = origin else {
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
        self.origin = match parse_name(text) {
            Ok(n) => n,
            Err(why) => {
                self.map.report(origin_at, "origin", why);
                return None;
            }
        };
        self.origin_key = key_of(&self.origin);
        self.origin_wire = wire_of(&self.origin);
        Some(origin_at)
    }

    /// Reads `[names]`: one node per owner name, with its RRsets. `inline` holds the names
    /// written elsewhere than in `[names.NAME]` tables (`[names]` with inline tables,
    /// dotted keys); `more` the tables, `hint` of them.
    ///
    /// Nothing is consumed: the entries are freed where they were allocated, `inline` once
    /// the whole model is built (`raw` goes out of scope in [`Builder::build`]) and each
    /// batch on the parse thread (see `super::apart` for why).
    fn names(
        &mut self,
        inline: &BTreeMap<Spanned<String>, Spanned<RawNode>>,
        more: &mut dyn Iterator<Item = Batch>,
        hint: usize,
        default_ttl: u32,
    ) -> Names {
        // Sized once: a large zone's map would otherwise be rehashed some twenty times.
        let n = inline.len() + hint;
        let mut names = Names {
            nodes: NodeTable::with_capacity(n),
            owners: DefinedNames::with_capacity(n),
            ns_targets: Vec::new(),
        };
        for (key, node) in inline {
            self.name_entry(&mut names, key, node, default_ttl);
        }
        for batch in more {
            for (key, node) in batch.entries() {
                self.name_entry(&mut names, key, node, default_ttl);
            }
        }
        names
    }

    /// Adds one `[names]` entry to `names`.
    fn name_entry(
        &mut self,
        names: &mut Names,
        key: &Spanned<String>,
        node: &Spanned<RawNode>,
        default_ttl: u32,
    ) {
        let key_text = NameKey::node(key.get_ref());
        let Some(owner) = self.owner(key, key_text) else {
            return;
        };
        if names.nodes.contains_key(&owner.key) {
            let (first, written) = names
                .owners
                .first_of(&names.nodes, &owner.key)
                .unwrap_or((0, ""));
            let reason = if written == key.get_ref() {
                // The same TOML key twice, in two slices of the file (within one, the
                // parser says so itself): what the parser would say of the whole file.
                "duplicate key".to_owned()
            } else {
                let (line, _) = self.map.position(first);
                format!("{} is already defined at line {line}", name_of(&owner.wire))
            };
            self.map.report(owner.at, key_text.to_string(), reason);
            return;
        }
        let node_ttl = node
            .get_ref()
            .ttl
            .as_ref()
            .and_then(|t| self.ttl(t, key_text.at(Part::Ttl)));
        let owner = Owner {
            ttl: node_ttl,
            ..owner
        };
        let rrsets = self.rrsets(&owner, node, key_text, default_ttl, &mut names.ns_targets);
        names.owners.push(owner.at, key.get_ref());
        names.nodes.insert(
            &owner.key,
            &owner.wire,
            Node {
                rrsets: rrsets.into(),
                ..Node::default()
            },
        );
    }

    /// Reads the `[soa]` table (the serial is set when the zone is finished).
    fn soa(&mut self, soa: RawSoa, default_ttl: u32) -> SoaFields {
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
        SoaFields {
            ttl: soa_ttl,
            mname,
            rname,
            serial_policy,
            refresh,
            retry,
            expire,
            minimum,
        }
    }

    /// Reads `[checks]` and `[pools]` and puts each pool at its name in `nodes`; returns the
    /// pools and where each was defined.
    fn pools(
        &mut self,
        checks: BTreeMap<Spanned<String>, crate::pool::RawCheck>,
        pools: BTreeMap<Spanned<String>, crate::pool::RawPool>,
        nodes: &mut NodeTable,
    ) -> (Vec<ZonePool>, Vec<Defined>) {
        // Pools: a pool is a name whose A and AAAA answers come from its healthy nodes. It
        // may share its name with other types (TXT, MX...), but not with addresses or a CNAME.
        let pool_at: HashMap<String, usize> = pools
            .keys()
            .map(|k| (k.get_ref().clone(), k.span().start))
            .collect();
        let specs = crate::pool::validate(self.map, &self.origin, checks, pools);
        let mut zone_pools = Vec::new();
        let mut pool_owners = Vec::new();
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
                .collect::<Box<[Rdata]>>();
            let node = nodes.insert(&key, &wire_of(&spec.name), Node::default());
            // Never `None`: a zone file cannot hold 2^32 - 1 pools (a table each).
            node.pool = u32::try_from(zone_pools.len() + 1)
                .ok()
                .and_then(std::num::NonZeroU32::new);
            pool_owners.push((key_of(&spec.name), at, key_text));
            zone_pools.push(ZonePool {
                position: self.map.position(at),
                spec,
                records: crate::zone::prepared::pool_records(&rdata),
                rdata,
                runtime: None,
            });
        }
        (zone_pools, pool_owners)
    }

    /// Adds the empty non-terminals and the apex if it has no data of its own.
    fn add_empty_non_terminals(&self, nodes: &mut NodeTable) {
        // Empty non-terminals: every name between a defined name and the apex exists
        // (RFC 4592 section 2.2.2), so that it answers NODATA rather than NXDOMAIN and stops
        // wildcard matching.
        // Collected first, without copying every key: the walk up stops at a name that
        // exists or was already found, whose own ancestors are (or will be) walked.
        // FxHash: a million lookups for a million names, of our own keys.
        let mut missing: rustc_hash::FxHashSet<&[u8]> = Default::default();
        for key in nodes.keys() {
            let mut up = parent(key);
            while let Some(p) = up {
                if !is_within(p, &self.origin_key) || nodes.contains_key(p) || !missing.insert(p) {
                    break;
                }
                up = parent(p);
            }
        }
        let missing: Vec<Box<[u8]>> = missing.into_iter().map(Box::from).collect();
        for p in missing {
            // An empty non-terminal is written nowhere: its name is the lowercase key.
            nodes.insert(&p, &p, Node::default());
        }
        if !nodes.contains_key(&self.origin_key) {
            nodes.insert(&self.origin_key, &wire_of(&self.origin), Node::default());
        }
    }

    /// Checks the apex NS and marks zone cuts: below a cut only glue may be written, and no
    /// pool. Returns whether the zone has any cut.
    fn delegations(
        &mut self,
        origin_at: usize,
        nodes: &mut NodeTable,
        owners: &DefinedNames,
        pool_owners: &[Defined],
    ) -> bool {
        // Apex NS, zone cuts, and what may live below them.
        if nodes
            .get(&self.origin_key)
            .is_none_or(|apex| apex.rrset(RecordType::NS).is_none())
        {
            self.map.report(origin_at, "names.\"@\".NS", "the zone apex has no NS records; list the zone's name servers under [names.\"@\"] NS = [...]");
        }
        let mut has_cuts = false;
        for (key, node) in nodes.iter_mut() {
            if *key != *self.origin_key && node.rrset(RecordType::NS).is_some() {
                node.cut = true;
                has_cuts = true;
            }
        }
        for (key, at, name) in owners.iter(nodes) {
            let key_text = NameKey::node(name);
            let Some(node) = nodes.get(key) else {
                continue;
            };
            let node_name = || name_of(nodes.wire(node));
            if node.cut
                && let Some(other) = node.rrsets.iter().find(|s| s.rtype != RecordType::NS)
            {
                self.map.report(at, key_text.to_string(), format!("{} is a delegation (it has NS records) and can hold nothing but NS, not {}", node_name(), other.rtype));
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
                        self.map.report(at, key_text.to_string(), format!("{} is below the delegation {}: only glue (A, AAAA) may be written there, not {}", node_name(), name_of(p), other.rtype));
                    }
                    break;
                }
                up = parent(p);
            }
        }
        for (key, at, key_text) in pool_owners {
            let Some(node) = nodes.get(key) else {
                continue;
            };
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
                            name_of(nodes.wire(node)),
                            name_of(p)
                        ),
                    );
                    break;
                }
                up = parent(p);
            }
        }
        has_cuts
    }

    /// Checks that every name server inside the zone has an address (glue).
    fn check_glue(&mut self, nodes: &NodeTable, ns_targets: &[NsTarget]) {
        for t in ns_targets {
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
    }

    /// Puts the SOA record first at the apex, with the serial its policy gives.
    fn insert_soa(
        &self,
        nodes: &mut NodeTable,
        fields: &SoaFields,
        mtime: Option<u64>,
    ) -> Option<()> {
        let (Some(mname), Some(rname)) = (fields.mname.clone(), fields.rname.clone()) else {
            return None;
        };
        let serial = match fields.serial_policy {
            SerialPolicy::Fixed(s) => s,
            SerialPolicy::Auto => mtime.map_or(1, |t| t as u32),
        };
        let soa = SOA::new(
            mname,
            rname,
            serial,
            fields.refresh as i32,
            fields.retry as i32,
            fields.expire as i32,
            fields.minimum,
        );
        let apex = nodes
            .get_mut(&self.origin_key)
            .expect("apex inserted above");
        let mut sets = std::mem::take(&mut apex.rrsets).into_vec();
        sets.insert(
            0,
            RrSet {
                rtype: RecordType::SOA,
                ttl: fields.ttl,
                records: Box::new([Rdata::new(RData::SOA(soa))]),
                prepared: Box::default(),
            },
        );
        apex.rrsets = sets.into();
        Some(())
    }

    pub(super) fn ttl(&mut self, t: &Spanned<i64>, key: impl fmt::Display) -> Option<u32> {
        let v = *t.get_ref();
        if (0..=MAX_TTL as i64).contains(&v) {
            Some(v as u32)
        } else {
            self.map.report(
                t.span().start,
                key.to_string(),
                format!("TTL {v} is out of range (0 to {MAX_TTL} seconds)"),
            );
            None
        }
    }

    fn soa_timer(&mut self, t: &Option<Spanned<i64>>, key: &str, default: u32) -> u32 {
        t.as_ref().and_then(|t| self.ttl(t, key)).unwrap_or(default)
    }

    pub(super) fn number<T: FromStr>(
        &mut self,
        text: &str,
        at: usize,
        key: impl fmt::Display,
        what: &str,
    ) -> Option<T> {
        match text.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => self.bad(
                at,
                key,
                format!("{what} must be a number from 0 to 65535, not {text:?}"),
            ),
        }
    }

    pub(super) fn bad<T>(&mut self, at: usize, key: impl fmt::Display, why: String) -> Option<T> {
        self.map.report(at, key.to_string(), why);
        None
    }
}
