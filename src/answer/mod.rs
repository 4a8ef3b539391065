//! The answer engine: what to say to one question, independent of any socket.
//!
//! [`answer_with`] is the decision: a function of the zone snapshot, the parsed question,
//! the client and, for pools, what a [`Selector`] picks. It changes nothing itself. It
//! fills a [`Response`] with references into the snapshot (no record is copied, nothing is
//! allocated for ordinary answers), and the transports encode it. [`answer`] is the
//! decision with the [`Live`] selector, which draws each pool's rotation counter, reads
//! the clock and does the bookkeeping of an answer sent ([`policy::record`]: served
//! times, last-healthy); explain uses a selector that draws and records nothing. It follows RFC 1034
//! section 4.3.2 (delegations, CNAME restarts, NXDOMAIN vs NODATA), RFC 4592 (wildcards),
//! RFC 2308 (negative answers) and RFC 8482 (ANY).

use std::net::IpAddr;
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use smallvec::SmallVec;

use crate::node::{Family, PoolRuntime};
use crate::policy::{self, ClientKey, Outcome, SelectInput, Selection};
use crate::zone::model::ZonePool;
use crate::zone::name::{is_within, label_starts, parent};
use crate::zone::prepared::{Prepared, pool_record_len};
use crate::zone::{Node, Rdata, RrSet, Snapshot, Zone};

/// Longest CNAME chain followed inside a zone before giving up (a loop guard; real chains
/// are one or two links).
pub const MAX_CNAME_CHAIN: usize = 8;

/// The question as the engine needs it.
#[derive(Debug, Clone, Copy)]
pub struct Question<'q> {
    /// Question name: lowercase, uncompressed wire format.
    pub qname: &'q [u8],
    /// Question type.
    pub qtype: RecordType,
    /// Who asked: the source address, and the EDNS Client Subnet if one was sent.
    pub client: Client,
}

/// The client a question came from, for policies that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// Source address of the packet.
    pub addr: IpAddr,
    /// EDNS Client Subnet (RFC 7871) from the query: address and source prefix length.
    pub subnet: Option<(IpAddr, u8)>,
}

impl Client {
    /// The key `client-hash` pools hash on: the ECS subnet when the query carried one.
    pub fn key(&self) -> ClientKey {
        match self.subnet {
            Some((addr, prefix_len)) => ClientKey {
                addr,
                prefix_len,
                from_ecs: true,
            },
            None => ClientKey {
                addr: self.addr,
                prefix_len: 0,
                from_ecs: false,
            },
        }
    }
}

/// Owner name of one record in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// The question name, as the client spelled it (answers and wildcard synthesis).
    Query,
    /// A name from the zone data: its uncompressed wire form, original case.
    Name(&'a [u8]),
}

/// One record of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rr<'a> {
    /// Owner name.
    pub owner: Owner<'a>,
    /// Record type.
    pub rtype: RecordType,
    /// TTL to send.
    pub ttl: u32,
    /// The data.
    pub rdata: &'a Rdata,
}

/// Records of one section; inline up to 16, which covers nearly every answer.
pub type Section<'a> = SmallVec<[Rr<'a>; 16]>;

/// Sections encoded when the zone was loaded ([`crate::zone::prepared`]), standing for the
/// answer, authority and additional sections of a [`Response`] (which are then empty).
#[derive(Debug, Clone, Copy)]
pub enum Encoded<'a> {
    /// The answer section of an RRset at the question name itself.
    Answer(&'a RrSet),
    /// Sections anchored at a name of this length that the question name lies at or
    /// below: the apex (negative answers) or a zone cut (referrals).
    Anchored(&'a Prepared, usize),
    /// A pool's answer at the question name: these nodes' records
    /// ([`ZonePool::records`]), in this order, with this TTL.
    Pool {
        /// The pool.
        pool: &'a ZonePool,
        /// Record type (A or AAAA).
        rtype: RecordType,
        /// Node indices, in answer order.
        nodes: [u8; crate::pool::spec::MAX_ANSWERS],
        /// How many of `nodes`.
        len: u8,
        /// TTL of the records.
        ttl: u32,
    },
}

/// What to send back, before encoding.
#[derive(Debug, Default)]
pub struct Response<'a> {
    /// The zone that answered, if any.
    pub zone: Option<&'a Zone>,
    /// Response code (extended codes included).
    pub rcode: ResponseCode,
    /// The AA flag.
    pub authoritative: bool,
    /// A referral: the additional section holds glue that must fit (RFC 9471).
    pub referral: bool,
    /// Answer section.
    pub answer: Section<'a>,
    /// Authority section.
    pub authority: Section<'a>,
    /// Additional section (without the OPT record, which the encoder adds).
    pub additional: Section<'a>,
    /// Scope prefix length to echo in an EDNS Client Subnet option (RFC 7871 section 7.2.1):
    /// 0 unless the answer depended on the client's subnet.
    pub ecs_scope: u8,
    /// Extended DNS Error info-code (RFC 8914) to add when the query had EDNS.
    pub ede: Option<u16>,
    /// Synthesised from a wildcard (RFC 4592): rate limiting counts these by zone.
    pub wildcard: bool,
    /// The zone cut of a referral (original case), which rate limiting counts it by.
    pub cut: Option<&'a [u8]>,
    /// The sections, encoded at load time, when the question allowed it (see
    /// [`answer_at`]); the three sections above are then empty.
    pub encoded: Option<Encoded<'a>>,
}

/// RFC 8914 info-code 20: the server is not authoritative for the name (the REFUSED
/// that NSD and Knot give outside their zones carries it too).
pub const EDE_NOT_AUTHORITATIVE: u16 = 20;

impl<'a> Response<'a> {
    /// A response with only an rcode.
    pub fn with_rcode(rcode: ResponseCode) -> Self {
        Self {
            rcode,
            ..Self::default()
        }
    }

    /// Records in the answer section, encoded or not.
    pub fn answer_count(&self) -> usize {
        match self.encoded {
            Some(Encoded::Answer(set)) => set.records.len(),
            Some(Encoded::Anchored(p, _)) => p.counts()[0] as usize,
            Some(Encoded::Pool { len, .. }) => len as usize,
            None => self.answer.len(),
        }
    }
}

/// What one pool answer asks of a selection.
#[derive(Debug, Clone, Copy)]
pub struct PoolQuestion {
    /// A or AAAA.
    pub family: Family,
    /// Who asks, for `client-hash`.
    pub client: ClientKey,
    /// When the question arrived, if the transport knows (a UDP batch reads the clock
    /// once); else the live selector reads the clock.
    pub arrived: Option<Instant>,
}

impl PoolQuestion {
    /// The selection input for this question with `counter` and the clock at `now`.
    pub fn input(self, counter: u64, now: std::time::Instant) -> SelectInput {
        SelectInput {
            counter,
            family: self.family,
            client: self.client,
            now,
        }
    }
}

/// Picks the nodes of one pool answer: where the decision meets live state.
pub trait Selector<'a> {
    /// Picks the nodes of `pool` for `q` into `out`.
    fn select(&mut self, pool: &'a PoolRuntime, q: PoolQuestion, out: &mut Selection);
}

/// The selector of answers actually sent: draws the pool's rotation counter, reads the
/// clock, and does the bookkeeping ([`policy::select`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Live;

impl Selector<'_> for Live {
    #[inline]
    fn select(&mut self, pool: &PoolRuntime, q: PoolQuestion, out: &mut Selection) {
        let input = q.input(pool.next_counter(), q.arrived.unwrap_or_else(Instant::now));
        policy::select(pool, &input, out);
    }
}

/// Computes the response to `q` from `snapshot` and does the bookkeeping of sending it:
/// [`answer_with`] and the [`Live`] selector.
#[inline]
pub fn answer<'a>(snapshot: &'a Snapshot, q: &Question<'_>) -> Response<'a> {
    answer_with(snapshot, q, &mut Live)
}

/// The address family a pool answers a question of `qtype` with at a name holding
/// `node`, if any: A gives IPv4 nodes, AAAA IPv6 ones, and ANY (RFC 8482: one RRset will
/// do; a pool's addresses are the point of the name) IPv4 when the name has no other data.
pub fn pool_family(qtype: RecordType, node: &Node) -> Option<Family> {
    match qtype {
        RecordType::A => Some(Family::V4),
        RecordType::AAAA => Some(Family::V6),
        RecordType::ANY if node.rrsets.is_empty() => Some(Family::V4),
        _ => None,
    }
}

/// Computes the response to `q` from `snapshot`, pools answered by `selector`. Changes
/// nothing itself: with a selector that changes nothing, it is free of side effects.
pub fn answer_with<'a>(
    snapshot: &'a Snapshot,
    q: &Question<'_>,
    selector: &mut impl Selector<'a>,
) -> Response<'a> {
    let mut resp = Response::default();
    answer_with_clock(snapshot, q, None, 0, &mut resp, selector);
    resp
}

/// [`answer`] for a question that arrived at `now`, into `resp` (which must be fresh,
/// [`Response::default`]). Pool selection (slow start, the served-at marks) uses `now`
/// instead of reading the clock, so that a batch of queries reads it once; and the
/// response, some 2 KB with its inline sections, is built in place instead of being
/// returned by value.
///
/// `room` is how many bytes the records may take in the message (what the size limit
/// leaves after the header, the question and the OPT record): a static answer, a negative
/// answer or a referral whose sections were encoded at load time and fit in it is answered
/// with those bytes ([`Response::encoded`]) instead of a list of records. 0 never does.
pub fn answer_at<'a>(
    snapshot: &'a Snapshot,
    q: &Question<'_>,
    now: Instant,
    room: usize,
    resp: &mut Response<'a>,
) {
    answer_with_clock(snapshot, q, Some(now), room, resp, &mut Live);
}

fn answer_with_clock<'a>(
    snapshot: &'a Snapshot,
    q: &Question<'_>,
    now: Option<Instant>,
    room: usize,
    resp: &mut Response<'a>,
    selector: &mut impl Selector<'a>,
) {
    if matches!(q.qtype, RecordType::AXFR | RecordType::IXFR) {
        // Zone transfers are not offered (yet): refuse as NSD and Knot do without an ACL.
        resp.rcode = ResponseCode::Refused;
        return;
    }
    let Some(zone) = snapshot.find_zone(q.qname) else {
        // Not authoritative and not recursive: REFUSED (RFC 8906 section 3.1.3.2 and common
        // practice of NSD and Knot).
        resp.rcode = ResponseCode::Refused;
        resp.ede = Some(EDE_NOT_AUTHORITATIVE);
        return;
    };
    resp.authoritative = true;
    resp.zone = Some(zone);
    let mut lookup = Lookup {
        zone,
        resp,
        qname: q.qname,
        room,
        qtype: q.qtype,
        client: q.client.key(),
        now,
        selector,
    };
    let mut key: &[u8] = q.qname;
    let mut owner = Owner::Query;
    let mut visited: [&[u8]; MAX_CNAME_CHAIN] = [&[]; MAX_CNAME_CHAIN];
    for depth in 0..MAX_CNAME_CHAIN {
        visited[depth] = key;
        match lookup.step(key, owner) {
            Step::Done => break,
            Step::Follow(cname) => {
                let target = cname.target.as_deref().unwrap_or(&[]);
                // The chain is followed inside this zone only, like NSD and Knot; a resolver
                // restarts the query for the rest (RFC 1034 section 4.3.2 step 3a).
                if !is_within(target, &zone.origin_key) || visited[..=depth].contains(&target) {
                    break;
                }
                key = target;
                // A CNAME's data is its target name, uncompressed (RFC 1035 section 3.3.1).
                owner = Owner::Name(&cname.wire);
            }
        }
    }
}

enum Step<'a> {
    Done,
    Follow(&'a Rdata),
}

struct Lookup<'a, 'r, S> {
    zone: &'a Zone,
    resp: &'r mut Response<'a>,
    /// The question name (the lookup key of the first step).
    qname: &'r [u8],
    /// Bytes the records may take; see [`answer_at`].
    room: usize,
    qtype: RecordType,
    client: ClientKey,
    /// When the question arrived, if the transport knows; else the clock is read when a
    /// pool needs it.
    now: Option<Instant>,
    selector: &'r mut S,
}

/// What the walk down from the apex found ([`Lookup::descend`]).
enum Descent<'a> {
    /// A zone cut at or above the name: the answer is a referral.
    Referral(&'a Node),
    /// No cut on the way: the name's own node, if it exists.
    Exact(Option<&'a Node>),
}

impl<'a, S: Selector<'a>> Lookup<'a, '_, S> {
    /// One pass of RFC 1034 section 4.3.2 step 3 for `key`.
    fn step(&mut self, key: &[u8], owner: Owner<'a>) -> Step<'a> {
        let zone = self.zone;
        let exact = if zone.has_cuts {
            match self.descend(key) {
                Descent::Referral(cut) => {
                    self.referral(cut);
                    return Step::Done;
                }
                Descent::Exact(node) => node,
            }
        } else {
            zone.nodes.get(key)
        };
        if let Some(node) = exact {
            return self.at_node(node, owner);
        }
        if zone.has_wildcards
            && let Some(node) = self.wildcard(key)
        {
            self.resp.wildcard = true;
            return self.at_node(node, owner);
        }
        self.resp.rcode = ResponseCode::NXDomain;
        self.push_soa();
        Step::Done
    }

    /// Walks down from the apex to `key`: the highest zone cut at or above `key` and below
    /// the apex, or else the node of `key` itself, which the walk has looked up on its way
    /// (so that a zone with delegations pays one lookup per name, not two). A DS query at
    /// the cut itself belongs to the parent side (RFC 4035 section 3.1.4.1), so it is not a
    /// referral.
    fn descend(&self, key: &[u8]) -> Descent<'a> {
        let mut starts = [0u8; 128];
        let n = label_starts(key, &mut starts);
        let apex_at = key.len() - self.zone.origin_key.len();
        // From just below the apex downwards.
        for &start in starts[..n].iter().rev() {
            let start = start as usize;
            if start >= apex_at {
                continue;
            }
            // A missing name means no name below it exists either (empty non-terminals are
            // materialised), so there is no cut further down, and no node for `key`.
            let Some(node) = self.zone.nodes.get(&key[start..]) else {
                return Descent::Exact(None);
            };
            if node.cut && !(start == 0 && self.qtype == RecordType::DS) {
                return Descent::Referral(node);
            }
            if start == 0 {
                return Descent::Exact(Some(node));
            }
        }
        // `key` is the apex: the walk looked nothing up.
        Descent::Exact(self.zone.nodes.get(key))
    }

    /// The wildcard that synthesises `key`, if any (RFC 4592 section 3.3.1): `*.` plus the
    /// closest encloser, the nearest existing ancestor.
    fn wildcard(&self, key: &[u8]) -> Option<&'a Node> {
        let mut encloser = parent(key)?;
        while !self.zone.nodes.contains_key(encloser) {
            encloser = parent(encloser)?;
        }
        let mut buf = [0u8; 2 + crate::zone::name::MAX_NAME_LEN];
        let len = 2 + encloser.len();
        if len > buf.len() {
            return None;
        }
        buf[..2].copy_from_slice(b"\x01*");
        buf[2..len].copy_from_slice(encloser);
        self.zone.nodes.get(&buf[..len])
    }

    fn at_node(&mut self, node: &'a Node, owner: Owner<'a>) -> Step<'a> {
        let qtype = self.qtype;
        if !matches!(qtype, RecordType::CNAME | RecordType::ANY)
            && let Some(cname) = node.rrset(RecordType::CNAME)
        {
            let rdata = &cname.records[0];
            self.resp.answer.push(Rr {
                owner,
                rtype: RecordType::CNAME,
                ttl: cname.ttl,
                rdata,
            });
            return Step::Follow(rdata);
        }
        if let Some(i) = node.pool_index()
            && let Some(family) = pool_family(qtype, node)
        {
            return self.pool_answer(&self.zone.pools[i], owner, family);
        }
        // RFC 8482 section 4.2: ANY gets one RRset rather than all of them; like Knot, the
        // one with the lowest type code.
        let set = match qtype {
            RecordType::ANY => node.rrsets.iter().min_by_key(|s| u16::from(s.rtype)),
            _ => node.rrset(qtype),
        };
        if let Some(set) = set {
            // The question name is the owner (first step, no wildcard): the bytes encoded
            // at load time are the answer.
            if owner == Owner::Query
                && !self.resp.wildcard
                && !set.prepared.is_empty()
                && set.prepared.len() <= self.room
            {
                self.resp.encoded = Some(Encoded::Answer(set));
                return Step::Done;
            }
            self.push_set(owner, set);
            if matches!(set.rtype, RecordType::NS | RecordType::MX | RecordType::SRV) {
                for rdata in set.records.iter() {
                    self.add_addresses(rdata);
                }
            }
            return Step::Done;
        }
        // NODATA: the name exists (possibly as an empty non-terminal), the type does not.
        self.push_soa();
        Step::Done
    }

    /// The healthy nodes of a pool, as the pool's policy picks them.
    fn pool_answer(&mut self, pool: &'a ZonePool, owner: Owner<'a>, family: Family) -> Step<'a> {
        let Some(runtime) = pool.runtime.as_deref() else {
            // Only a snapshot that was never given to the health monitor lacks runtimes.
            self.resp.rcode = ResponseCode::ServFail;
            return Step::Done;
        };
        let mut sel = Selection::default();
        let q = PoolQuestion {
            family,
            client: self.client,
            arrived: self.now,
        };
        self.selector.select(runtime, q, &mut sel);
        self.resp.ecs_scope = sel.scope_prefix;
        match sel.outcome {
            Outcome::Answer => {
                let rtype = family.record_type();
                // At the question name: the records encoded at load time, if they fit.
                if owner == Owner::Query && sel.nodes().len() * pool_record_len(rtype) <= self.room
                {
                    self.resp.encoded = Some(Encoded::Pool {
                        pool,
                        rtype,
                        nodes: sel.node_array(),
                        len: sel.nodes().len() as u8,
                        ttl: sel.ttl,
                    });
                    return Step::Done;
                }
                for &i in sel.nodes() {
                    self.resp.answer.push(Rr {
                        owner,
                        rtype,
                        ttl: sel.ttl,
                        rdata: &pool.rdata[i as usize],
                    });
                }
            }
            Outcome::Empty => self.push_soa(),
            Outcome::ServFail => {
                self.resp.rcode = ResponseCode::ServFail;
                self.resp.answer.clear();
            }
        }
        Step::Done
    }

    fn push_set(&mut self, owner: Owner<'a>, set: &'a RrSet) {
        push_records(&mut self.resp.answer, owner, set);
    }

    /// The SOA in the authority section of a negative answer, with the RFC 2308 TTL.
    fn push_soa(&mut self) {
        // An empty answer section means the first step: the key is the question name.
        let negative = &self.zone.negative;
        let apex_len = self.zone.origin_key.len();
        if self.resp.answer.is_empty()
            && negative.len() <= self.room
            && negative.applies_to(self.qname, apex_len)
        {
            self.resp.encoded = Some(Encoded::Anchored(negative, apex_len));
            return;
        }
        let apex = self.zone.apex();
        self.resp.authority.push(Rr {
            owner: Owner::Name(self.zone.nodes.wire(apex)),
            rtype: RecordType::SOA,
            ttl: self.zone.negative_ttl,
            rdata: self.zone.soa(),
        });
    }

    /// A referral to the child zone at `cut`: its NS set in authority, addresses of its
    /// name servers that this zone holds (glue) in additional, AA clear unless a CNAME
    /// from this zone's own data led here.
    fn referral(&mut self, cut: &'a Node) {
        let Some(ns) = cut.rrset(RecordType::NS) else {
            return;
        };
        self.resp.authoritative = !self.resp.answer.is_empty();
        self.resp.referral = true;
        let cut_wire = self.zone.nodes.wire(cut);
        self.resp.cut = Some(cut_wire);
        if let Some(p) = cut.referral.as_deref()
            && self.resp.answer.is_empty()
            && p.len() <= self.room
            && p.applies_to(self.qname, cut_wire.len())
        {
            self.resp.encoded = Some(Encoded::Anchored(p, cut_wire.len()));
            return;
        }
        for rdata in ns.records.iter() {
            self.resp.authority.push(Rr {
                owner: Owner::Name(cut_wire),
                rtype: RecordType::NS,
                ttl: ns.ttl,
                rdata,
            });
        }
        for rdata in ns.records.iter() {
            self.add_addresses(rdata);
        }
    }

    /// Additional-section processing (RFC 1034 section 3.6): addresses of an in-zone
    /// target of NS, MX or SRV data.
    fn add_addresses(&mut self, rdata: &'a Rdata) {
        let Some(node) = self.zone.additional_node(rdata) else {
            return;
        };
        let owner = Owner::Name(self.zone.nodes.wire(node));
        if self.resp.additional.iter().any(|rr| rr.owner == owner) {
            return;
        }
        for set in node.address_sets() {
            push_records(&mut self.resp.additional, owner, set);
        }
    }
}

/// Appends every record of `set` under `owner` to `section`.
fn push_records<'a>(section: &mut Section<'a>, owner: Owner<'a>, set: &'a RrSet) {
    for rdata in set.records.iter() {
        section.push(Rr {
            owner,
            rtype: set.rtype,
            ttl: set.ttl,
            rdata,
        });
    }
}
