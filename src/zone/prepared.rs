//! Answers encoded once per zone load, copied per query.
//!
//! The common static answers depend on little besides the zone: a name's own RRset (the
//! question name is the owner), the SOA of a negative answer (NXDOMAIN, NODATA), and the NS
//! records and glue of a referral. What the question adds is its position: compression
//! pointers (RFC 1035 section 4.1.4) point into the question name at offset 12. So the
//! loader encodes these sections here, with the one record encoder
//! ([`super::encode::write_record`]) that answers use per query, against a name the
//! question lies at or below (its *anchor*): the RRset's own name, the apex, or the cut.
//! A question `delta` bytes longer than the anchor moves every pointer by `delta`.
//!
//! Why the copy is byte for byte what the per-query encoder writes: it compresses each
//! name against the longest suffix it shares with the question name. A question
//! `X.anchor` shares with a name `N` the same suffix as the anchor does, unless `N` lies
//! strictly below the anchor and the label of `N` just above the anchor equals the label of
//! the question just above the anchor; only then would the per-query encoder find a longer
//! match. Those labels are kept (`Prepared::below`) and such questions take the per-query
//! path ([`Prepared::applies_to`]). Truncation is left to the per-query path too: the
//! answer engine takes a prepared answer only when all of it fits.

use hickory_proto::rr::RecordType;

use super::encode::{NameWriter, name_len, write_record};
use super::model::{Node, Rdata, RrSet, Zone};
use super::name::is_within;

/// Sections encoded against an anchor name (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The records, compressed as if the question name were the anchor.
    wire: Box<[u8]>,
    /// Records in the answer, authority and additional sections.
    counts: [u16; 3],
    /// Offsets in `wire` of the compression pointers (each points into the question).
    pointers: Box<[u16]>,
    /// Lowercase labels (with their length byte) just above the anchor of the names
    /// below the anchor that are compressed: a question with the same label there takes
    /// the per-query path.
    below: Box<[Box<[u8]>]>,
}

impl Prepared {
    /// Length of the encoded records.
    #[inline]
    pub fn len(&self) -> usize {
        self.wire.len()
    }

    /// Whether there are no records (nothing was prepared).
    pub fn is_empty(&self) -> bool {
        self.wire.is_empty()
    }

    /// Records in the answer, authority and additional sections.
    #[inline]
    pub fn counts(&self) -> [u16; 3] {
        self.counts
    }

    /// Whether the bytes are those the per-query encoder writes for the question `qname`
    /// (lowercase wire), which lies at or below the anchor of `anchor_len` bytes.
    #[inline]
    pub fn applies_to(&self, qname: &[u8], anchor_len: usize) -> bool {
        let delta = qname.len() - anchor_len;
        if delta == 0 || self.below.is_empty() {
            return true;
        }
        let mut i = 0;
        while i + 1 + (qname[i] as usize) < delta {
            i += 1 + qname[i] as usize;
        }
        let label = &qname[i..delta];
        !self.below.iter().any(|b| **b == *label)
    }

    /// Appends the records for a question name `delta` bytes longer than the anchor.
    #[inline]
    pub fn write(&self, out: &mut Vec<u8>, delta: usize) {
        let start = out.len();
        out.extend_from_slice(&self.wire);
        if delta == 0 {
            return;
        }
        for &p in self.pointers.iter() {
            let at = start + p as usize;
            let ptr = u16::from_be_bytes([out[at], out[at + 1]]) + delta as u16;
            out[at..at + 2].copy_from_slice(&ptr.to_be_bytes());
        }
    }
}

/// The answer section for a question of `set`'s type at the set's own name `key`: every
/// record with the question name as owner. Empty for NS, MX and SRV, whose answers carry
/// additional-section addresses (left to the per-query path).
pub fn answer(key: &[u8], set: &RrSet) -> Box<[u8]> {
    if matches!(set.rtype, RecordType::NS | RecordType::MX | RecordType::SRV) {
        return Box::default();
    }
    let names = NameWriter { qname: key };
    // Exact for data without names to compress (pointer, type, class, TTL, length, data).
    let mut out = Vec::with_capacity(set.records.iter().map(|r| 12 + r.wire.len()).sum());
    for rdata in set.records.iter() {
        write_record(&mut out, &names, None, set.rtype, set.ttl, rdata, |_| {});
    }
    out.into_boxed_slice()
}

/// Bytes between the starts of two nodes' records in [`pool_records`]: room for an AAAA
/// record (pointer 2, type, class, TTL and length 10, address 16).
pub const POOL_RECORD_STRIDE: usize = 28;

/// The address record of each node of a pool (`rdata`, in node order), encoded for an
/// answer at the question name with TTL 0 (the TTL is chosen per answer), each at a
/// multiple of [`POOL_RECORD_STRIDE`].
pub fn pool_records(rdata: &[Rdata]) -> Box<[u8]> {
    let names = NameWriter { qname: &[] };
    let mut out = vec![0u8; rdata.len() * POOL_RECORD_STRIDE];
    let mut record = Vec::with_capacity(POOL_RECORD_STRIDE);
    for (i, r) in rdata.iter().enumerate() {
        // An AAAA record's data is the 16-byte address (RFC 3596 section 2.2).
        let rtype = if r.wire.len() == 16 {
            RecordType::AAAA
        } else {
            RecordType::A
        };
        record.clear();
        write_record(&mut record, &names, None, rtype, 0, r, |_| {});
        out[i * POOL_RECORD_STRIDE..i * POOL_RECORD_STRIDE + record.len()].copy_from_slice(&record);
    }
    out.into_boxed_slice()
}

/// Length of a pool node's record in [`pool_records`] for `rtype` (A or AAAA).
#[inline]
pub fn pool_record_len(rtype: RecordType) -> usize {
    if rtype == RecordType::AAAA {
        POOL_RECORD_AAAA
    } else {
        POOL_RECORD_A
    }
}

/// Length of a pool node's A record: pointer to the question (2), type, class, TTL,
/// RDLENGTH (10), the address (4).
pub const POOL_RECORD_A: usize = 16;
/// Length of a pool node's AAAA record (the address is 16 bytes).
pub const POOL_RECORD_AAAA: usize = 28;

/// One record to prepare: owner (uncompressed wire), type, TTL, data, section (0 answer,
/// 1 authority, 2 additional).
type Record<'z> = (&'z [u8], RecordType, u32, &'z Rdata, usize);

fn prepare<'z>(anchor: &[u8], records: impl IntoIterator<Item = Record<'z>>) -> Prepared {
    let names = NameWriter { qname: anchor };
    let mut wire = Vec::new();
    let mut pointers = Vec::new();
    let mut counts = [0u16; 3];
    let mut below: Vec<Box<[u8]>> = Vec::new();
    let mut note_below = |name: &[u8]| {
        let key: Vec<u8> = name.iter().map(u8::to_ascii_lowercase).collect();
        if key.len() > anchor.len() && is_within(&key, anchor) {
            let delta = key.len() - anchor.len();
            let mut i = 0;
            while i + 1 + (key[i] as usize) < delta {
                i += 1 + key[i] as usize;
            }
            let label: Box<[u8]> = key[i..delta].into();
            if !below.contains(&label) {
                below.push(label);
            }
        }
    };
    for (owner, rtype, ttl, rdata, section) in records {
        note_below(owner);
        for &at in rdata.compressible_names() {
            let at = at as usize;
            note_below(&rdata.wire[at..at + name_len(&rdata.wire[at..])]);
        }
        write_record(&mut wire, &names, Some(owner), rtype, ttl, rdata, |p| {
            pointers.push(p as u16)
        });
        counts[section] += 1;
    }
    Prepared {
        wire: wire.into_boxed_slice(),
        counts,
        pointers: pointers.into_boxed_slice(),
        below: below.into_boxed_slice(),
    }
}

/// The authority section of a negative answer (NXDOMAIN, NODATA): the apex SOA with the
/// RFC 2308 TTL, anchored at the apex.
pub fn negative(zone: &Zone) -> Prepared {
    let apex = zone.apex();
    prepare(
        &zone.origin_key,
        [(
            zone.nodes.wire(apex),
            RecordType::SOA,
            zone.negative_ttl,
            zone.soa(),
            1,
        )],
    )
}

/// The referral to the child zone at `cut` (key `key`): its NS records in authority and
/// the addresses this zone holds for them in additional (RFC 1034 section 4.3.2 step 3b),
/// anchored at the cut. `None` when the cut has no NS records.
pub fn referral(zone: &Zone, key: &[u8], cut: &Node) -> Option<Prepared> {
    let ns = cut.rrset(RecordType::NS)?;
    let mut records: Vec<Record> = ns
        .records
        .iter()
        .map(|rdata| (zone.nodes.wire(cut), RecordType::NS, ns.ttl, rdata, 1))
        .collect();
    let mut seen: Vec<&Node> = Vec::new();
    for rdata in ns.records.iter() {
        let Some(node) = zone.additional_node(rdata) else {
            continue;
        };
        if seen.iter().any(|n| std::ptr::eq(*n, node)) {
            continue;
        }
        seen.push(node);
        for set in node.address_sets() {
            for rdata in set.records.iter() {
                records.push((zone.nodes.wire(node), set.rtype, set.ttl, rdata, 2));
            }
        }
    }
    Some(prepare(key, records))
}

/// Prepares every answer of `zone`: each RRset's own answer, the negative answer and
/// each referral.
pub fn prepare_zone(zone: &mut Zone) {
    for (key, node) in zone.nodes.iter_mut() {
        for set in node.rrsets.iter_mut() {
            set.prepared = answer(key, set);
        }
    }
    prepare_apex(zone);
    let referrals: Vec<(Box<[u8]>, Prepared)> = zone
        .nodes
        .iter()
        .filter(|(_, n)| n.cut)
        .filter_map(|(k, n)| Some((Box::from(k), referral(zone, k, n)?)))
        .collect();
    for (key, p) in referrals {
        if let Some(node) = zone.nodes.get_mut(&key) {
            node.referral = Some(Box::new(p));
        }
    }
}

/// Prepares what depends on the SOA (after it changed): the apex RRsets' answers and the
/// negative answer.
pub fn prepare_apex(zone: &mut Zone) {
    let key = zone.origin_key.clone();
    if let Some(apex) = zone.nodes.get_mut(&key) {
        for set in apex.rrsets.iter_mut() {
            set.prepared = answer(&key, set);
        }
    }
    zone.negative = negative(zone);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_below_the_anchor_moves_the_pointers() {
        let p = Prepared {
            wire: Box::new([0xC0, 0x0C, 0, 6]),
            counts: [0, 1, 0],
            pointers: Box::new([0]),
            below: Box::new([]),
        };
        let mut out = Vec::new();
        p.write(&mut out, 3);
        assert_eq!(out, [0xC0, 0x0F, 0, 6]);
    }

    #[test]
    fn the_label_above_the_anchor_decides() {
        let p = Prepared {
            below: Box::new([b"\x02ns"[..].into()]),
            ..Prepared::default()
        };
        let anchor = b"\x03sub\x02lb\x00".len();
        assert!(p.applies_to(b"\x03sub\x02lb\x00", anchor));
        assert!(p.applies_to(b"\x04host\x03sub\x02lb\x00", anchor));
        assert!(p.applies_to(b"\x02ns\x04host\x03sub\x02lb\x00", anchor));
        assert!(!p.applies_to(b"\x02ns\x03sub\x02lb\x00", anchor));
        assert!(!p.applies_to(b"\x01a\x02ns\x03sub\x02lb\x00", anchor));
    }
}
