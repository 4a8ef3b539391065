//! The raw shape of a zone file, as serde sees it (`deny_unknown_fields` everywhere), with
//! the span of every value kept for error positions.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use hickory_proto::rr::RecordType;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::RECORD_TYPES;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZone {
    pub(super) origin: Option<Spanned<String>>,
    pub(super) ttl: Option<Spanned<i64>>,
    pub(super) soa: Option<Spanned<RawSoa>>,
    #[serde(default)]
    pub(super) names: BTreeMap<Spanned<String>, Spanned<RawNode>>,
    #[serde(default)]
    pub(super) checks: BTreeMap<Spanned<String>, crate::pool::RawCheck>,
    #[serde(default)]
    pub(super) pools: BTreeMap<Spanned<String>, crate::pool::RawPool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSoa {
    pub(super) mname: Spanned<String>,
    pub(super) rname: Spanned<String>,
    pub(super) serial: Option<Spanned<toml::Value>>,
    pub(super) refresh: Option<Spanned<i64>>,
    pub(super) retry: Option<Spanned<i64>>,
    pub(super) expire: Option<Spanned<i64>>,
    pub(super) minimum: Option<Spanned<i64>>,
    pub(super) ttl: Option<Spanned<i64>>,
}

/// One `[names]` entry: its TTL and the RRsets written under it, in the order of
/// [`RECORD_TYPES`] (whatever order the file has them in).
///
/// Deserialized by hand rather than derived: the derived struct held all nine record
/// types inline (about 800 bytes per name, most of them `None`), and a large zone keeps
/// every entry alive until the model is built. Unknown keys are refused exactly as
/// `deny_unknown_fields` does, with the same message.
pub(super) struct RawNode {
    pub(super) ttl: Option<Spanned<i64>>,
    pub(super) sets: Vec<(RecordType, Spanned<RawSet>)>,
}

/// The keys a `[names]` entry may have: `ttl`, then the record types.
const NODE_FIELDS: [&str; 1 + RECORD_TYPES.len()] = {
    let mut fields = ["ttl"; 1 + RECORD_TYPES.len()];
    let mut i = 0;
    while i < RECORD_TYPES.len() {
        fields[i + 1] = RECORD_TYPES[i].0;
        i += 1;
    }
    fields
};

impl RawNode {
    /// The RRsets written, each with its type, in [`NODE_FIELDS`] order.
    pub(super) fn sets(&self) -> impl Iterator<Item = (RecordType, &Spanned<RawSet>)> {
        self.sets.iter().map(|(t, s)| (*t, s))
    }

    /// Moves every span `by` bytes on: the node was parsed from a slice of the file that
    /// starts `by` bytes in.
    pub(super) fn shift(&mut self, by: usize) {
        self.ttl = self.ttl.take().map(|t| shifted(t, by));
        // `Spanned` has no span setter; the collect reuses the vector in place.
        self.sets = std::mem::take(&mut self.sets)
            .into_iter()
            .map(|(t, set)| {
                let mut set = shifted(set, by);
                let inner = set.get_mut();
                inner.ttl = inner.ttl.take().map(|t| shifted(t, by));
                for (span, _) in &mut inner.items {
                    if let Some(span) = span {
                        *span = span.start + by..span.end + by;
                    }
                }
                (t, set)
            })
            .collect();
    }
}

/// `s`, its span moved `by` bytes on.
pub(super) fn shifted<T>(s: Spanned<T>, by: usize) -> Spanned<T> {
    let span = s.span();
    Spanned::new(span.start + by..span.end + by, s.into_inner())
}

/// A key of a `[names]` entry: `ttl` or the index of a record type in [`NODE_FIELDS`].
struct NodeField(usize);

impl<'de> Deserialize<'de> for NodeField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = NodeField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("field identifier")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeField, E> {
                match NODE_FIELDS.iter().position(|f| *f == v) {
                    Some(i) => Ok(NodeField(i)),
                    None => Err(de::Error::unknown_field(v, &NODE_FIELDS)),
                }
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = RawNode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct RawNode")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
                let mut ttl = None;
                // Most names hold one RRset: a first push would reserve room for four
                // (about 350 bytes), kept for as long as the raw zone lives.
                let mut sets: Vec<(usize, Spanned<RawSet>)> = Vec::with_capacity(1);
                while let Some(NodeField(i)) = map.next_key()? {
                    let duplicate = if i == 0 {
                        ttl.is_some()
                    } else {
                        sets.iter().any(|(j, _)| *j == i)
                    };
                    if duplicate {
                        return Err(de::Error::duplicate_field(NODE_FIELDS[i]));
                    }
                    if i == 0 {
                        ttl = Some(map.next_value()?);
                    } else {
                        sets.push((i, map.next_value()?));
                    }
                }
                sets.sort_by_key(|(i, _)| *i);
                let sets = sets
                    .into_iter()
                    .map(|(i, s)| (RECORD_TYPES[i - 1].1, s))
                    .collect();
                Ok(RawNode { ttl, sets })
            }
        }
        d.deserialize_struct("RawNode", &NODE_FIELDS, NodeVisitor)
    }
}

/// One RRset as written: `"x"`, `["x", "y"]` or `{ ttl = 60, data = ... }`.
pub(super) struct RawSet {
    pub(super) ttl: Option<Spanned<i64>>,
    /// Items with their spans; `None` span for the single-string form (use the set's span).
    pub(super) items: Vec<(Option<Range<usize>>, RawItem)>,
    /// Written as a single string rather than an array.
    pub(super) single: bool,
}

/// One record as written: a string, or (TXT only) an array of strings.
pub(super) enum RawItem {
    Text(String),
    Parts(Vec<String>),
}

impl<'de> Deserialize<'de> for RawSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SetVisitor)
    }
}

pub(super) struct SetVisitor;

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
