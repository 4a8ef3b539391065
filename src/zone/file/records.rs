//! Records in zone files: the RRsets of one `[names]` entry, each item validated into
//! record data.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, RecordType};
use std::str::FromStr;
use toml::Spanned;

use super::RECORD_TYPES;
use super::build::{Builder, NsTarget, Owner};
use super::key_path::{NameKey, Part};
use super::names::plain_data_wire;
use super::raw::{RawItem, RawNode};
use crate::source::SourceMap;
use crate::zone::model::{Rdata, RrSet};
use crate::zone::name::{is_within, name_of, wire_of};

/// Longest character-string in a TXT record (RFC 1035 section 3.3).
const MAX_CHARACTER_STRING: usize = 255;

impl Builder<'_, '_> {
    pub(super) fn rrsets(
        &mut self,
        owner: &Owner,
        node: &Spanned<RawNode>,
        key_text: NameKey<'_>,
        default_ttl: u32,
        ns_targets: &mut Vec<NsTarget>,
    ) -> Vec<RrSet> {
        let raw = node.get_ref();
        let mut out = Vec::with_capacity(raw.sets.len());
        let node_at = node.span().start;
        for (rtype, set) in raw.sets() {
            let set_key = key_text.at(Part::Set(rtype));
            let set_at = set.span().start;
            let set = set.get_ref();
            let ttl = set
                .ttl
                .as_ref()
                .and_then(|t| self.ttl(t, key_text.at(Part::SetTtl(rtype))))
                .or(owner.ttl)
                .unwrap_or(default_ttl);
            if set.items.is_empty() {
                self.map.report(
                    set_at,
                    set_key.to_string(),
                    "empty record list: remove the key or give at least one record",
                );
                continue;
            }
            if rtype == RecordType::CNAME && set.items.len() != 1 {
                self.map.report(
                    set_at,
                    set_key.to_string(),
                    "a name can have only one CNAME (RFC 1034 section 3.6.2)",
                );
                continue;
            }
            let mut records: Vec<Rdata> = Vec::with_capacity(set.items.len());
            for (i, (span, item)) in set.items.iter().enumerate() {
                let at = span.as_ref().map_or(set_at, |s| s.start);
                let item_key = if set.single {
                    set_key
                } else {
                    key_text.at(Part::Item(rtype, i))
                };
                let Some(rdata) = self.rdata(rtype, item, at, item_key) else {
                    continue;
                };
                if rtype == RecordType::NS
                    && let Some(target) = &rdata.target
                    && is_within(target, &self.origin_key)
                {
                    ns_targets.push(NsTarget {
                        target: target.clone(),
                        at,
                        key: item_key.to_string(),
                    });
                }
                if records
                    .iter()
                    .any(|r| r.wire.eq_ignore_ascii_case(&rdata.wire))
                {
                    self.map.report(
                        at,
                        item_key.to_string(),
                        format!("duplicate {rtype} record"),
                    );
                    continue;
                }
                records.push(rdata);
            }
            if let Err(why) = crate::zone::limits::check_rrset(owner.key.len(), &records) {
                self.map.report(set_at, set_key.to_string(), why);
                continue;
            }
            if !records.is_empty() {
                out.push(RrSet {
                    rtype,
                    ttl,
                    records: records.into(),
                    prepared: Box::default(),
                });
            }
        }
        if out.iter().any(|s| s.rtype == RecordType::CNAME) {
            if owner.key == self.origin_key {
                self.map.report(
                    node_at,
                    key_text.to_string(),
                    "the zone apex cannot be a CNAME: it must hold the SOA and NS records",
                );
            } else if let Some(other) = out.iter().find(|s| s.rtype != RecordType::CNAME) {
                self.map.report(node_at, key_text.to_string(), format!("{} has a CNAME and {} records: a CNAME cannot coexist with other data (RFC 1034 section 3.6.2)", name_of(&owner.wire), other.rtype));
            }
        }
        if out.is_empty() && raw.sets.is_empty() {
            self.map.report(
                node_at,
                key_text.to_string(),
                format!(
                    "no records: give at least one of {}",
                    RECORD_TYPES.map(|(key, _)| key).join(", ")
                ),
            );
        }
        out
    }

    fn rdata(
        &mut self,
        rtype: RecordType,
        item: &RawItem,
        at: usize,
        key: NameKey<'_>,
    ) -> Option<Rdata> {
        let text = match item {
            RawItem::Text(t) => t.as_str(),
            RawItem::Parts(parts) => {
                if rtype != RecordType::TXT {
                    self.map.report(
                        at,
                        key.to_string(),
                        format!("{rtype} data is a string, not an array of strings"),
                    );
                    return None;
                }
                if let Some(p) = parts.iter().find(|p| p.len() > MAX_CHARACTER_STRING) {
                    self.map.report(at, key.to_string(), format!("a TXT string in an explicit list can be at most {MAX_CHARACTER_STRING} bytes, this one is {}; write it as one string and Roundel splits it", p.len()));
                    return None;
                }
                return self.encoded(RData::TXT(TXT::new(parts.clone())), at, key);
            }
        };
        // Split only for the types with several fields: most records have one.
        let fields: Vec<&str> = if matches!(rtype, RecordType::MX | RecordType::SRV) {
            text.split_whitespace().collect()
        } else {
            Vec::new()
        };
        let want = |n: usize, form: &str, map: &mut SourceMap| -> bool {
            if fields.len() == n {
                true
            } else {
                map.report(
                    at,
                    key.to_string(),
                    format!("{rtype} data must be \"{form}\", not {text:?}"),
                );
                false
            }
        };
        let data = match rtype {
            RecordType::A => match Ipv4Addr::from_str(text.trim()) {
                Ok(a) => RData::A(a.into()),
                Err(_) => return self.bad(at, key, format!("not an IPv4 address: {text:?}")),
            },
            RecordType::AAAA => match Ipv6Addr::from_str(text.trim()) {
                Ok(a) => RData::AAAA(a.into()),
                Err(_) => return self.bad(at, key, format!("not an IPv6 address: {text:?}")),
            },
            // Data that is one name after fixed fields: encoded from its wire form.
            RecordType::CNAME | RecordType::NS | RecordType::PTR => {
                let name = self.target_wire(text, at, key)?;
                return Some(Rdata::with_name(&[], &name, true));
            }
            RecordType::MX => {
                if !want(2, "preference exchange", self.map) {
                    return None;
                }
                let pref = self.number::<u16>(fields[0], at, key, "MX preference")?;
                let exchange = self.target_wire(fields[1], at, key)?;
                return Some(Rdata::with_name(&pref.to_be_bytes(), &exchange, true));
            }
            RecordType::SRV => {
                if !want(4, "priority weight port target", self.map) {
                    return None;
                }
                let priority = self.number::<u16>(fields[0], at, key, "SRV priority")?;
                let weight = self.number::<u16>(fields[1], at, key, "SRV weight")?;
                let port = self.number::<u16>(fields[2], at, key, "SRV port")?;
                let target = self.target_wire(fields[3], at, key)?;
                let mut fixed = [0u8; 6];
                fixed[..2].copy_from_slice(&priority.to_be_bytes());
                fixed[2..4].copy_from_slice(&weight.to_be_bytes());
                fixed[4..].copy_from_slice(&port.to_be_bytes());
                // RFC 2782: the target is never compressed.
                return Some(Rdata::with_name(&fixed, &target, false));
            }
            RecordType::CAA => match RData::try_from_str(RecordType::CAA, text) {
                Ok(d) => d,
                Err(e) => {
                    return self.bad(
                        at,
                        key,
                        format!("CAA data must be \"flags tag \\\"value\\\"\": {e}"),
                    );
                }
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
                RData::TXT(TXT::new(chunks))
            }
            _ => return self.bad(at, key, format!("record type {rtype} is not supported")),
        };
        self.encoded(data, at, key)
    }

    /// A name in record data (NS, CNAME, PTR, MX, SRV target) in wire form, case kept: a
    /// plain name directly, as owner names go; anything else through the full parse and
    /// its messages.
    fn target_wire(&mut self, text: &str, at: usize, key: NameKey<'_>) -> Option<Vec<u8>> {
        if let Some(wire) = plain_data_wire(text.trim(), &self.origin_wire) {
            return Some(wire);
        }
        let name = self.rdata_name(text, at, key)?;
        Some(wire_of(&name).into_vec())
    }

    /// `data` pre-encoded, or the reason it cannot be.
    fn encoded(&mut self, data: RData, at: usize, key: NameKey<'_>) -> Option<Rdata> {
        match Rdata::try_new(data) {
            Ok(r) => Some(r),
            Err(e) => self.bad(at, key, e.to_string()),
        }
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
