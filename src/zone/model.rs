//! The validated, immutable zone model that answers are computed from.
//!
//! A [`Snapshot`] holds every served zone. It is built off the query path by the loader,
//! never changes afterwards, and is replaced as a whole on reload. Record data is kept
//! only pre-encoded as wire bytes, which every transport copies; the rare readers that
//! want hickory's `RData` (export, the admin API's explain) decode it from those bytes
//! ([`Rdata::data`]). Names likewise are kept as wire bytes only, in each zone's
//! [`NodeTable`] ([`Zone::name`] decodes one): a large zone's memory is mostly per-record
//! and per-name overhead, and this keeps it small.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder, Restrict};

use super::name::{is_within, key_of, name_of, wire_of};
use super::prepared::Prepared;
pub use super::table::NodeTable;
use crate::node::PoolRuntime;
use crate::pool::PoolSpec;

/// Hash map keyed by lowercase wire names (the zones of a snapshot; a zone's names are a
/// [`NodeTable`]). FxHash: the keys are short and come from our own zone files or are
/// bounded by the 255-byte name limit, and lookups are on the hot path.
pub type NameMap<V> = HashMap<Box<[u8]>, V, rustc_hash::FxBuildHasher>;

/// One record's data, pre-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdata {
    /// Uncompressed wire-format RDATA, names in their original case.
    pub wire: Box<[u8]>,
    /// Offsets in `wire` of names that may be compressed (RFC 3597 section 4 allows it only
    /// for the RFC 1035 types: NS, CNAME, PTR, MX, SOA).
    pub compressible: [u16; 2],
    /// How many entries of `compressible` are used.
    pub compressible_len: u8,
    /// Lowercase key of the name this record points at (NS, CNAME, MX, SRV, PTR target), used
    /// for CNAME chasing and additional-section processing.
    pub target: Option<Box<[u8]>>,
}

/// Largest RDATA a record can carry: RDLENGTH is 16 bits (RFC 1035 section 3.2.1).
pub const MAX_RDATA_LEN: usize = u16::MAX as usize;

/// Record data that cannot be put on the wire: its RDATA is over [`MAX_RDATA_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the record data is over {MAX_RDATA_LEN} bytes on the wire, more than a record can carry (RFC 1035 section 3.2.1: RDLENGTH is 16 bits)"
)]
pub struct RdataTooLong;

impl Rdata {
    /// Pre-encodes `data` whose size is known to fit (SOA, addresses): names are at most
    /// 255 bytes, so only TXT-like data can exceed the RDATA limit.
    pub fn new(data: RData) -> Self {
        match Self::try_new(data) {
            Ok(r) => r,
            Err(e) => unreachable!("fixed-size record data over the limit: {e}"),
        }
    }

    /// Record data made of `fixed` bytes (MX preference; SRV priority, weight and port)
    /// and then one name, `name` in uncompressed wire form (case kept): what
    /// [`Rdata::try_new`] gives for NS, CNAME, PTR, MX and SRV data, without a parsed
    /// `Name`. `compress`: the name may be compressed in answers (not SRV's, RFC 2782).
    pub fn with_name(fixed: &[u8], name: &[u8], compress: bool) -> Self {
        let mut wire = Vec::with_capacity(fixed.len() + name.len());
        wire.extend_from_slice(fixed);
        wire.extend_from_slice(name);
        Self {
            wire: wire.into_boxed_slice(),
            compressible: [if compress { fixed.len() as u16 } else { 0 }, 0],
            compressible_len: u8::from(compress),
            target: Some(name.to_ascii_lowercase().into_boxed_slice()),
        }
    }

    /// Pre-encodes `data`, refusing data longer than a record can carry.
    pub fn try_new(data: RData) -> Result<Self, RdataTooLong> {
        // Addresses, most of a large zone, in one allocation of the right size.
        let fixed: Option<Box<[u8]>> = match &data {
            RData::A(a) => Some(Box::new(a.0.octets())),
            RData::AAAA(a) => Some(Box::new(a.0.octets())),
            _ => None,
        };
        if let Some(wire) = fixed {
            return Ok(Self {
                wire,
                compressible: [0; 2],
                compressible_len: 0,
                target: None,
            });
        }
        let mut wire = Vec::with_capacity(32);
        let mut compressible = [0u16; 2];
        let mut compressible_len = 0u8;
        let mut push_name = |wire: &mut Vec<u8>, name: &Name, compress: bool| {
            if compress && (compressible_len as usize) < compressible.len() {
                compressible[compressible_len as usize] = wire.len() as u16;
                compressible_len += 1;
            }
            wire.extend_from_slice(&wire_of(name));
        };
        let target = match &data {
            RData::NS(ns) => {
                push_name(&mut wire, &ns.0, true);
                Some(key_of(&ns.0))
            }
            RData::CNAME(c) => {
                push_name(&mut wire, &c.0, true);
                Some(key_of(&c.0))
            }
            RData::PTR(p) => {
                push_name(&mut wire, &p.0, true);
                Some(key_of(&p.0))
            }
            RData::MX(mx) => {
                wire.extend_from_slice(&mx.preference.to_be_bytes());
                push_name(&mut wire, &mx.exchange, true);
                Some(key_of(&mx.exchange))
            }
            RData::SRV(srv) => {
                wire.extend_from_slice(&srv.priority.to_be_bytes());
                wire.extend_from_slice(&srv.weight.to_be_bytes());
                wire.extend_from_slice(&srv.port.to_be_bytes());
                // RFC 2782: the target is never compressed.
                push_name(&mut wire, &srv.target, false);
                Some(key_of(&srv.target))
            }
            RData::SOA(soa) => {
                push_name(&mut wire, &soa.mname, true);
                push_name(&mut wire, &soa.rname, true);
                for v in [
                    soa.serial,
                    soa.refresh as u32,
                    soa.retry as u32,
                    soa.expire as u32,
                    soa.minimum,
                ] {
                    wire.extend_from_slice(&v.to_be_bytes());
                }
                None
            }
            other => {
                // No names inside: hickory's encoder is exact for these types.
                // The encoder stops at 65,535 bytes (its default limit) with an error.
                let mut enc = BinEncoder::new(&mut wire);
                if other.emit(&mut enc).is_err() {
                    return Err(RdataTooLong);
                }
                None
            }
        };
        if wire.len() > MAX_RDATA_LEN {
            return Err(RdataTooLong);
        }
        Ok(Self {
            wire: wire.into_boxed_slice(),
            compressible,
            compressible_len,
            target,
        })
    }

    /// Offsets of the compressible names inside `wire`.
    pub fn compressible_names(&self) -> &[u16] {
        &self.compressible[..self.compressible_len as usize]
    }

    /// The data as hickory understands it, decoded from `wire` (a record of type `rtype`).
    /// For export and the admin API, not for answers: it allocates.
    pub fn data(&self, rtype: RecordType) -> RData {
        let mut decoder = BinDecoder::new(&self.wire);
        match RData::read(&mut decoder, rtype, Restrict::new(self.wire.len() as u16)) {
            Ok(data) => data,
            // Only bytes this type's encoder wrote get here; keep them as they are if
            // hickory reads them otherwise.
            Err(_) => RData::Unknown {
                code: rtype,
                rdata: hickory_proto::rr::rdata::NULL::with(self.wire.to_vec()),
            },
        }
    }

    /// Where the serial lies in a SOA record's data (RFC 1035 section 3.3.13: the first
    /// of the five 32-bit fields that end the data, after the two names).
    pub(in crate::zone) fn soa_serial_range(&self) -> std::ops::Range<usize> {
        let at = self.wire.len().saturating_sub(20);
        at..(at + 4).min(self.wire.len())
    }

    /// The SOA serial, when this is a SOA record's data.
    fn soa_serial(&self) -> u32 {
        self.wire
            .get(self.soa_serial_range())
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes)
    }

    /// This SOA record's data with another serial.
    fn with_soa_serial(&self, serial: u32) -> Self {
        let mut out = self.clone();
        let range = out.soa_serial_range();
        if range.len() == 4 {
            out.wire[range].copy_from_slice(&serial.to_be_bytes());
        }
        out
    }
}

/// All records of one type at one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrSet {
    /// Record type.
    pub rtype: RecordType,
    /// TTL shared by the whole set (RFC 2181 section 5.2).
    pub ttl: u32,
    /// The records, in file order.
    pub records: Box<[Rdata]>,
    /// The answer section for a question of this type at this name, encoded at load time
    /// ([`super::prepared::answer`]); empty when the per-query encoder writes it.
    pub prepared: Box<[u8]>,
}

/// One owner name of a zone, possibly an empty non-terminal. Its name lives in the zone's
/// [`NodeTable`] ([`NodeTable::key`], [`NodeTable::wire`]), which sets the name fields
/// when the node is inserted: with them a node is 40 bytes.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// RRsets at this name; empty for an empty non-terminal.
    pub rrsets: Box<[RrSet]>,
    /// A zone cut: NS records below the apex (RFC 1034 section 4.2.1).
    pub cut: bool,
    /// When this name is a pool: its index into [`Zone::pools`] plus one
    /// ([`Node::pool_index`]). Four bytes, not a `usize` option's sixteen.
    pub pool: Option<std::num::NonZeroU32>,
    /// At a zone cut: the referral, encoded at load time ([`super::prepared::referral`]).
    pub referral: Option<Box<Prepared>>,
    /// Where the name starts in the table's name bytes.
    pub(super) name_at: usize,
    /// Length of the name in wire form.
    pub(super) name_len: u8,
    /// The name as written differs from its key in case, and follows the key.
    pub(super) cased: bool,
}

impl Node {
    /// Index into [`Zone::pools`] when this name is a pool.
    #[inline]
    pub fn pool_index(&self) -> Option<usize> {
        self.pool.map(|p| p.get() as usize - 1)
    }

    /// The RRset of `rtype`, if any.
    pub fn rrset(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }

    /// The address RRsets (A, then AAAA) that additional-section processing adds for a
    /// name server or mail exchange at this name (RFC 1034 section 3.6).
    pub fn address_sets(&self) -> impl Iterator<Item = &RrSet> {
        [RecordType::A, RecordType::AAAA]
            .into_iter()
            .filter_map(|t| self.rrset(t))
    }
}

/// How the SOA serial is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialPolicy {
    /// Exactly this serial.
    Fixed(u32),
    /// Derived from the file's modification time, and bumped whenever the content changes
    /// while the server runs, so it always increases with the content.
    Auto,
}

/// One authoritative zone.
#[derive(Debug)]
pub struct Zone {
    /// The apex name (absolute).
    pub origin: Name,
    /// Line and column of the `origin` key in the file.
    pub origin_position: (usize, usize),
    /// Lowercase wire key of the apex.
    pub origin_key: Box<[u8]>,
    /// The file this zone was loaded from.
    pub file: PathBuf,
    /// Default TTL of the file.
    pub default_ttl: u32,
    /// TTL of the SOA record itself.
    pub soa_ttl: u32,
    /// TTL of the SOA in negative answers: min(SOA TTL, SOA minimum) (RFC 2308 section 3).
    pub negative_ttl: u32,
    /// How the serial was chosen.
    pub serial_policy: SerialPolicy,
    /// Digest of the zone's data, to tell whether a reload changed it.
    pub content_digest: u64,
    /// Every owner name, including empty non-terminals, by lowercase key.
    pub nodes: NodeTable,
    /// Whether any zone cut exists (lets the common case skip the delegation walk).
    pub has_cuts: bool,
    /// Whether any wildcard exists (lets the common case skip the wildcard search).
    pub has_wildcards: bool,
    /// Pools of this zone, referenced by [`Node::pool`].
    pub pools: Vec<ZonePool>,
    /// The authority section of a negative answer (the SOA), encoded at load time
    /// ([`super::prepared::negative`]).
    pub negative: Prepared,
    /// Stable number of this zone for the life of the process: kept by origin across
    /// reloads, never reused by another origin. The transport keeps per-zone counters
    /// under it (`dns::stats`), so the zone model does not hold them.
    pub index: usize,
}

/// A pool of a zone: its specification, the pre-encoded address of each node, and (once
/// the health monitor has checked its nodes) the live runtime answers are selected from.
#[derive(Debug)]
pub struct ZonePool {
    /// The validated pool.
    pub spec: PoolSpec,
    /// Line and column of the pool's key (`[pools.NAME]`) in the zone file.
    pub position: (usize, usize),
    /// One A or AAAA record per node, in node order.
    pub rdata: Box<[Rdata]>,
    /// The same records encoded for an answer at the question name, TTL 0, node `i`'s
    /// at `i *` [`super::prepared::POOL_RECORD_STRIDE`] ([`super::prepared::pool_records`]).
    pub records: Box<[u8]>,
    /// Live node state; `None` until [`Snapshot::attach_pools`] (a zone loaded only for
    /// checking has none).
    pub runtime: Option<Arc<PoolRuntime>>,
}

impl Zone {
    /// Replaces the SOA serial (used when the automatic serial has to move forwards).
    pub fn set_serial(&mut self, serial: u32) {
        let apex = self
            .nodes
            .get_mut(&self.origin_key)
            .expect("validated zones have an apex");
        let mut sets = std::mem::take(&mut apex.rrsets).into_vec();
        for set in sets.iter_mut().filter(|s| s.rtype == RecordType::SOA) {
            set.records = Box::new([set.records[0].with_soa_serial(serial)]);
            set.prepared = Box::default();
        }
        apex.rrsets = sets.into();
        super::prepared::prepare_apex(self);
    }

    /// The node whose addresses additional-section processing adds for the target of
    /// `rdata` (NS, MX, SRV; RFC 1034 section 3.6), when this zone holds that name.
    pub fn additional_node(&self, rdata: &Rdata) -> Option<&Node> {
        let target = rdata.target.as_deref()?;
        if !is_within(target, &self.origin_key) {
            return None;
        }
        self.nodes.get(target)
    }

    /// The apex node.
    pub fn apex(&self) -> &Node {
        match self.nodes.get(&self.origin_key) {
            Some(apex) => apex,
            None => unreachable!("validated zones have an apex node"),
        }
    }

    /// The SOA record data (present in every valid zone).
    pub fn soa(&self) -> &Rdata {
        &self
            .apex()
            .rrset(RecordType::SOA)
            .expect("validated zones have a SOA")
            .records[0]
    }

    /// The current serial.
    pub fn serial(&self) -> u32 {
        self.soa().soa_serial()
    }

    /// Every RRset of the zone, apex first, then names in canonical-ish (sorted key) order.
    pub fn rrsets(&self) -> Vec<(&Node, &RrSet)> {
        let mut nodes: Vec<(&[u8], &Node)> = self.nodes.iter().collect();
        // Keys are lowercase: the name built from one is the lowercase name.
        nodes.sort_by_cached_key(|(k, _)| (**k != *self.origin_key, name_of(k)));
        nodes
            .into_iter()
            .flat_map(|(_, n)| n.rrsets.iter().map(move |s| (n, s)))
            .collect()
    }

    /// The owner name of `node`, a node of this zone, as the zone file wrote it
    /// (absolute): for messages and export, not for answers.
    pub fn name(&self, node: &Node) -> Name {
        name_of(self.nodes.wire(node))
    }
}

/// Names one pool of a snapshot: its zone's origin key and its own name key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// Lowercase wire key of the zone's origin.
    pub zone: Box<[u8]>,
    /// Lowercase wire key of the pool's name.
    pub pool: Box<[u8]>,
}

/// Up to this many zones, [`Snapshot::find_zone`] compares the question with each origin
/// instead of looking up each of its suffixes.
const FEW_ZONES: usize = 4;

/// Every served zone: what one reload produces and the query path reads.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Zones by the lowercase key of their apex.
    pub zones: NameMap<Arc<Zone>>,
    /// Increases by one with every successful load.
    pub generation: u64,
    /// The [`Zone::index`] the next new origin gets.
    pub next_index: usize,
}

impl Snapshot {
    /// The zone that is the closest enclosing one for `qname` (a lowercase wire name).
    pub fn find_zone(&self, qname: &[u8]) -> Option<&Zone> {
        // A few zones: comparing the question's tail with each origin is cheaper than
        // hashing every suffix of the question (hot path).
        if self.zones.len() == 1 {
            // One zone, a delegated subdomain: the usual deployment.
            let (origin, zone) = self.zones.iter().next()?;
            return is_within(qname, origin).then_some(&**zone);
        }
        if self.zones.len() <= FEW_ZONES {
            return self
                .zones
                .iter()
                .filter(|(origin, _)| is_within(qname, origin))
                .max_by_key(|(origin, _)| origin.len())
                .map(|(_, z)| &**z);
        }
        let mut name = qname;
        loop {
            if let Some(z) = self.zones.get(name) {
                return Some(z);
            }
            name = super::name::parent(name)?;
        }
    }

    /// Every pool of every zone with its key, in a stable order (zones by origin, pools in
    /// file order).
    pub fn pools(&self) -> Vec<(PoolKey, PoolSpec)> {
        self.sorted_zones()
            .iter()
            .flat_map(|z| {
                z.pools.iter().map(|p| {
                    let key = PoolKey {
                        zone: z.origin_key.clone(),
                        pool: key_of(&p.spec.name),
                    };
                    (key, p.spec.clone())
                })
            })
            .collect()
    }

    /// Attaches the runtimes the health monitor built, each to the pool its key names (in
    /// any order: nothing here depends on how [`Snapshot::pools`] sorted them). Only
    /// possible before the snapshot is shared.
    ///
    /// # Panics
    /// If a key names no pool of this snapshot, or a runtime was built for a pool of
    /// another name: either would serve one pool's nodes under another's name.
    pub fn attach_pools(
        &mut self,
        runtimes: impl IntoIterator<Item = (PoolKey, Arc<PoolRuntime>)>,
    ) {
        for (key, runtime) in runtimes {
            let zone = self
                .zones
                .get_mut(&key.zone)
                .expect("a pool key names a zone of this snapshot");
            let zone =
                Arc::get_mut(zone).expect("a snapshot is not shared before its pools are attached");
            let pool = zone
                .pools
                .iter_mut()
                .find(|p| key_of(&p.spec.name) == key.pool)
                .expect("a pool key names a pool of its zone");
            assert_eq!(
                runtime.name(),
                &pool.spec.name,
                "a runtime attached to a pool of another name"
            );
            pool.runtime = Some(runtime);
        }
    }

    /// Every pool with a runtime attached, with its zone, zones sorted by origin.
    pub fn pool_runtimes(&self) -> Vec<(&Zone, &Arc<PoolRuntime>)> {
        self.sorted_zones()
            .into_iter()
            .flat_map(|z| {
                z.pools
                    .iter()
                    .filter_map(move |p| p.runtime.as_ref().map(|rt| (&**z, rt)))
            })
            .collect()
    }

    /// Zones sorted by origin, for listings.
    pub fn sorted_zones(&self) -> Vec<&Arc<Zone>> {
        let mut v: Vec<_> = self.zones.values().collect();
        v.sort_by(|a, b| a.origin.cmp(&b.origin));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{CAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};

    /// A large zone's name table is mostly nodes (see [`super::NodeTable`]).
    #[test]
    fn a_node_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 40);
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// Export and explain read hickory's data back from the wire bytes: every type a zone
    /// file can hold comes back as it went in, names in their original case.
    #[test]
    fn record_data_comes_back_from_its_wire_bytes() {
        let soa = SOA::new(name("ns1.Ex.test."), name("h.ex.test."), 7, 1, 2, 3, 4);
        let all = [
            RData::A("192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap().into()),
            RData::AAAA("2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().into()),
            RData::CNAME(CNAME(name("WWW.ex.test."))),
            RData::NS(NS(name("ns.ex.test."))),
            RData::PTR(PTR(name("host.ex.test."))),
            RData::MX(MX::new(10, name("Mail.ex.test."))),
            RData::SRV(SRV::new(1, 2, 443, name("svc.ex.test."))),
            RData::TXT(TXT::new(vec!["v=spf1 -all".into(), "two".into()])),
            RData::CAA(CAA::new_issue(false, Some(name("ca.test.")), vec![])),
            RData::SOA(soa),
        ];
        for data in all {
            let rtype = data.record_type();
            let rdata = Rdata::new(data.clone());
            assert_eq!(rdata.data(rtype), data, "{rtype}");
            assert_eq!(rdata.data(rtype).to_string(), data.to_string(), "{rtype}");
        }
    }

    #[test]
    fn the_soa_serial_is_read_and_replaced_in_the_wire() {
        let soa = SOA::new(name("ns1.ex.test."), name("h.ex.test."), 7, 1, 2, 3, 4);
        let rdata = Rdata::new(RData::SOA(soa.clone()));
        assert_eq!(rdata.soa_serial(), 7);
        let moved = rdata.with_soa_serial(0x8000_0001);
        assert_eq!(moved.soa_serial(), 0x8000_0001);
        let mut want = soa;
        want.serial = 0x8000_0001;
        assert_eq!(moved.data(RecordType::SOA), RData::SOA(want));
    }
}
