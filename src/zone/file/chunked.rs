//! A zone file parsed in parts: its `[names.NAME]` tables a slice at a time (cut by
//! [`split`](super::split)), the rest of the file as one document, then merged by name.
//!
//! The result is the [`RawZone`] that parsing the whole text at once gives, with the same
//! spans and the same problems, but the parser's transient memory is bounded by the slice,
//! not the file (see `split` for the figures).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::raw::{RawNode, RawZone, shifted};
use super::split::{CHUNK_BYTES, names_chunks};
use crate::source::toml_key;
use crate::source::unknown_keys::{self, KeyProblem, MAX_UNKNOWN};

/// A slice holding `[names.NAME]` tables only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamesPart {
    names: BTreeMap<Spanned<String>, Spanned<RawNode>>,
}

/// Parses a zone file's text as a [`RawZone`]: every unknown key is a problem, as with
/// [`unknown_keys::parse`]; `None` when the text does not parse for another reason.
pub(super) fn parse(text: &str) -> (Option<RawZone>, Vec<KeyProblem>) {
    parse_in(text, CHUNK_BYTES)
}

/// [`parse`] with slices of at least `chunk_bytes` (tests cut at every table).
pub(super) fn parse_in(text: &str, chunk_bytes: usize) -> (Option<RawZone>, Vec<KeyProblem>) {
    let chunks = names_chunks(text, chunk_bytes);
    if chunks.is_empty() {
        return unknown_keys::parse::<RawZone>(text);
    }
    let (raw, mut problems) = unknown_keys::parse::<RawZone>(&without(text, &chunks));
    let mut raw = raw;
    for chunk in chunks {
        if problems.len() >= MAX_UNKNOWN {
            // As a whole parse would: stop collecting past the bound, and say nothing
            // of what could not be checked.
            raw = None;
            break;
        }
        let (part, found) = unknown_keys::parse::<NamesPart>(&text[chunk.clone()]);
        problems.extend(found.into_iter().map(|p| KeyProblem {
            at: p.at + chunk.start,
            ..p
        }));
        let Some(part) = part else {
            raw = None;
            break;
        };
        if let Some(zone) = raw.as_mut()
            && let Err(duplicate) = merge(&mut zone.names, part, chunk.start)
        {
            problems.push(duplicate);
            raw = None;
        }
    }
    problems.sort_by_key(|p| p.at);
    (raw, problems)
}

/// `text` with the given slices blanked to spaces, so that every other byte keeps its
/// offset (and so its line and column in messages). Borrowed when the slices run to the
/// end of the text: then the part before them is the whole rest.
fn without<'t>(text: &'t str, chunks: &[Range<usize>]) -> Cow<'t, str> {
    let first = chunks.first().map_or(text.len(), |c| c.start);
    let last = chunks.last().map_or(text.len(), |c| c.end);
    let between_covered = chunks.windows(2).all(|w| w[0].end == w[1].start);
    if last == text.len() && between_covered {
        return Cow::Borrowed(&text[..first]);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for c in chunks {
        out.push_str(&text[at..c.start]);
        out.extend(std::iter::repeat_n(' ', c.end - c.start));
        at = c.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Adds the names of a slice that starts `at` bytes into the file. A name defined twice
/// is TOML's "duplicate key", reported at the later definition as the parser would.
fn merge(
    names: &mut BTreeMap<Spanned<String>, Spanned<RawNode>>,
    part: NamesPart,
    at: usize,
) -> Result<(), KeyProblem> {
    for (key, node) in part.names {
        let key = shifted(key, at);
        let mut node = shifted(node, at);
        node.get_mut().shift(at);
        let here = key.span().start;
        match names.entry(key) {
            Entry::Vacant(v) => {
                v.insert(node);
            }
            Entry::Occupied(o) => {
                return Err(KeyProblem {
                    at: here.max(o.key().span().start),
                    key: format!("names.{}", toml_key(o.key().get_ref())),
                    reason: "duplicate key".into(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::file::raw::RawItem;

    /// Everything the builder reads of the names, spans included.
    fn names_of(raw: &RawZone) -> Vec<String> {
        raw.names
            .iter()
            .map(|(k, n)| {
                let sets: Vec<String> = n
                    .get_ref()
                    .sets()
                    .map(|(t, s)| {
                        let items: Vec<String> = s
                            .get_ref()
                            .items
                            .iter()
                            .map(|(span, item)| match item {
                                RawItem::Text(t) => format!("{span:?}{t}"),
                                RawItem::Parts(p) => format!("{span:?}{p:?}"),
                            })
                            .collect();
                        let ttl = s.get_ref().ttl.as_ref().map(|t| (t.span(), *t.get_ref()));
                        format!("{t}@{:?} ttl {ttl:?} {items:?}", s.span())
                    })
                    .collect();
                let ttl = n.get_ref().ttl.as_ref().map(|t| (t.span(), *t.get_ref()));
                format!(
                    "{}@{:?} {:?} ttl {ttl:?} {sets:?}",
                    k.get_ref(),
                    k.span(),
                    n.span()
                )
            })
            .collect()
    }

    /// The chunked parse, cut at every table, gives what the whole parse gives.
    fn same_as_whole(text: &str) {
        let (whole, whole_problems) = unknown_keys::parse::<RawZone>(text);
        let (cut, cut_problems) = parse_in(text, 1);
        assert_eq!(cut_problems, whole_problems, "{text}");
        assert_eq!(whole.is_some(), cut.is_some(), "{text}");
        if let (Some(whole), Some(cut)) = (whole, cut) {
            assert_eq!(names_of(&cut), names_of(&whole), "{text}");
            assert_eq!(cut.origin.map(|o| o.span()), whole.origin.map(|o| o.span()));
            assert_eq!(cut.soa.map(|s| s.span()), whole.soa.map(|s| s.span()));
            assert_eq!(cut.pools.len(), whole.pools.len());
        }
    }

    const HEAD: &str = "origin = \"x.test.\"\nttl = 60\n[soa]\nmname = \"ns1\"\nrname = \"h\"\n";

    #[test]
    fn the_shipped_zones_parse_the_same_cut_or_whole() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                same_as_whole(&std::fs::read_to_string(&path).unwrap());
                seen += 1;
            }
        }
        assert!(seen >= 2, "zones/ has the example zones");
    }

    #[test]
    fn names_around_other_tables_and_inline_names() {
        same_as_whole(&format!(
            "{HEAD}[names.\"@\"]\nNS = [\"ns1\", \"ns2\"]\n[names.ns1]\nA = \"192.0.2.1\"\nttl = 5\n\
             [pools.web]\nnodes = []\n[names.b]\nTXT = {{ ttl = 9, data = [[\"a\", \"b\"], \"c\"] }}\n\
             [names]\nz = {{ A = \"192.0.2.9\" }}\n"
        ));
    }

    #[test]
    fn unknown_keys_in_names_tables_are_reported_where_they_are() {
        same_as_whole(&format!(
            "{HEAD}[names.a]\nA = \"192.0.2.1\"\nAA = \"x\"\n[names.b]\nttll = 5\nMX = \"10 a\"\n\
             [soa2]\nx = 1\n"
        ));
    }

    #[test]
    fn a_syntax_error_in_a_names_table_ends_the_parse_as_before() {
        same_as_whole(&format!(
            "{HEAD}[names.a]\nA = \"192.0.2.1\"\n[names.b]\nA = 192.0.2.2\n[names.c]\nA = \"x\"\n"
        ));
        same_as_whole(&format!(
            "{HEAD}[names.a]\nA = [\"192.0.2.1\"\n[names.b]\nA = \"1\"\n"
        ));
    }

    #[test]
    fn a_name_defined_twice_is_a_duplicate_key_at_the_second() {
        for text in [
            format!(
                "{HEAD}[names.a]\nA = \"192.0.2.1\"\n[names.b]\nA = \"1\"\n[names.\"a\"]\nA = \"2\"\n"
            ),
            format!("{HEAD}[names]\na = {{ A = \"192.0.2.1\" }}\n[names.a]\nA = \"2\"\n"),
        ] {
            let (raw, problems) = parse_in(&text, 1);
            assert!(raw.is_none());
            let (_, whole) = unknown_keys::parse::<RawZone>(&text);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].at, whole[0].at, "{text}");
            assert_eq!(problems[0].reason, whole[0].reason);
            assert_eq!(problems[0].key, "names.a");
        }
    }
}
