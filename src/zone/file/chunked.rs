//! A zone file parsed in parts: its `[names.NAME]` tables a slice at a time (cut by
//! [`split`](super::split)), the rest of the file as one document, handed on as they are
//! parsed (see `super::apart`, which runs this on a thread of its own).
//!
//! Together the parts are what parsing the whole text at once gives, with the same spans
//! and the same problems, but the parser's transient memory is bounded by the slice, not
//! the file (see `split` for the figures), and the builder works on one slice while the
//! next is parsed.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use toml::Spanned;

use super::fast;
use super::raw::{RawNode, RawZone, shifted};
use super::split::names_chunks;
use crate::source::unknown_keys::{self, KeyProblem, MAX_UNKNOWN};

/// One `[names]` entry: the name as written, and its table.
pub(super) type Entry = (Spanned<String>, Spanned<RawNode>);

/// What the parse hands on, in this order: one `Head`, then `Names` per slice; `Failed`
/// ends it early (and comes alone when the rest of the file does not parse).
pub(super) enum Msg {
    /// The file without its names slices, the problems found in it, and how many names
    /// the slices define (to size the builder's maps once).
    Head {
        raw: Box<RawZone>,
        problems: Vec<KeyProblem>,
        names: usize,
    },
    /// The entries of one slice, sorted by name (toml's tables are ordered maps), spans
    /// relative to the file.
    Names {
        entries: Vec<Entry>,
        problems: Vec<KeyProblem>,
    },
    /// The rest of the file or a slice did not parse (the problems say why), or too many
    /// problems were found: nothing more comes.
    Failed { problems: Vec<KeyProblem> },
}

/// A slice holding `[names.NAME]` tables only. Its entries are kept in toml's order in a
/// vector: the parser has already refused a name defined twice within one document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamesPart {
    #[serde(deserialize_with = "in_order")]
    names: Vec<Entry>,
}

fn in_order<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Entry>, D::Error> {
    struct EntriesVisitor;
    impl<'de> Visitor<'de> for EntriesVisitor {
        type Value = Vec<Entry>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a table of names")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Entry>, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    d.deserialize_map(EntriesVisitor)
}

/// Parses a zone file's text, slices of at least `chunk_bytes`, handing each part to
/// `send` as it is ready; stops early when `send` says the receiver is gone. Every unknown
/// key is a problem, as with [`unknown_keys::parse`]. `between` runs before each slice
/// (the caller frees what the receiver gave back).
pub(super) fn produce(
    text: &str,
    chunk_bytes: usize,
    send: &mut dyn FnMut(Msg) -> bool,
    between: &mut dyn FnMut(),
) {
    let (chunks, names) = names_chunks(text, chunk_bytes);
    let (raw, problems) = if chunks.is_empty() {
        unknown_keys::parse::<RawZone>(text)
    } else {
        unknown_keys::parse::<RawZone>(&without(text, &chunks))
    };
    let mut found = problems.len();
    // A rest that does not parse fails the file, but the slices are still read for their
    // problems, as a parse of the whole file would report them.
    let head_failed = raw.is_none();
    let mut failed_problems = Vec::new();
    match raw {
        Some(raw) => {
            let head = Msg::Head {
                raw: Box::new(raw),
                problems,
                names,
            };
            if !send(head) {
                return;
            }
        }
        None => failed_problems = problems,
    }
    for chunk in chunks {
        between();
        if found >= MAX_UNKNOWN {
            // As a whole parse would: stop collecting past the bound.
            send(Msg::Failed {
                problems: failed_problems,
            });
            return;
        }
        let (part, problems) = read_slice(&text[chunk.clone()]);
        let problems: Vec<KeyProblem> = problems
            .into_iter()
            .map(|p| KeyProblem {
                at: p.at + chunk.start,
                ..p
            })
            .collect();
        found += problems.len();
        let Some(names) = part else {
            failed_problems.extend(problems);
            send(Msg::Failed {
                problems: failed_problems,
            });
            return;
        };
        if head_failed {
            failed_problems.extend(problems);
            continue;
        }
        // The collect reuses the vector in place.
        let entries: Vec<Entry> = names
            .into_iter()
            .map(|(key, node)| {
                let mut node = shifted(node, chunk.start);
                node.get_mut().shift(chunk.start);
                (shifted(key, chunk.start), node)
            })
            .collect();
        if !send(Msg::Names { entries, problems }) {
            return;
        }
    }
    if head_failed {
        send(Msg::Failed {
            problems: failed_problems,
        });
    }
}

/// The entries of one names slice, spans relative to the slice: read by [`fast`] when the
/// slice keeps to its subset of TOML, else parsed by toml (whose problems are then the
/// slice's, as before).
fn read_slice(slice: &str) -> (Option<Vec<Entry>>, Vec<KeyProblem>) {
    match fast::read(slice) {
        Some(entries) => (Some(entries), Vec::new()),
        None => toml_slice(slice),
    }
}

/// The entries of one names slice as toml and serde read them, with their problems.
pub(super) fn toml_slice(slice: &str) -> (Option<Vec<Entry>>, Vec<KeyProblem>) {
    let (part, problems) = unknown_keys::parse::<NamesPart>(slice);
    (part.map(|p| p.names), problems)
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

    /// Every part, merged as the builder would see it.
    fn parse_in(text: &str, chunk_bytes: usize) -> (Option<RawZone>, Vec<KeyProblem>) {
        let mut raw: Option<RawZone> = None;
        let mut problems = Vec::new();
        let mut failed = false;
        produce(
            text,
            chunk_bytes,
            &mut |m| {
                match m {
                    Msg::Head {
                        raw: r,
                        problems: p,
                        ..
                    } => {
                        raw = Some(*r);
                        problems.extend(p);
                    }
                    Msg::Names {
                        entries,
                        problems: p,
                    } => {
                        problems.extend(p);
                        for (k, n) in entries {
                            let zone = raw.as_mut().expect("the head comes first");
                            assert!(zone.names.insert(k, n).is_none(), "a duplicate");
                        }
                    }
                    Msg::Failed { problems: p } => {
                        problems.extend(p);
                        failed = true;
                    }
                }
                true
            },
            &mut || {},
        );
        problems.sort_by_key(|p| p.at);
        (raw.filter(|_| !failed), problems)
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
}

/// The whole path, through the builder, on files large enough to be cut in several slices.
#[cfg(test)]
mod across_slices {
    use std::fmt::Write;
    use std::path::Path;

    use super::super::parse_zone;
    use super::super::split::CHUNK_BYTES;

    /// A zone of `n` names `h{i}` (each 192.0.2.x), over several slices.
    fn big(n: usize) -> String {
        let mut t = String::from(
            "origin = \"x.test.\"\n[soa]\nmname = \"ns1\"\nrname = \"h\"\n\
             [names.\"@\"]\nNS = \"ns1\"\n[names.ns1]\nA = \"192.0.2.1\"\n",
        );
        for i in 0..n {
            let _ = writeln!(t, "[names.h{i}]\nA = \"192.0.2.{}\"", i % 250 + 1);
        }
        assert!(t.len() > 3 * CHUNK_BYTES, "several slices");
        t
    }

    /// `(line, column, key, reason)` of each problem.
    fn problems(text: &str) -> Vec<(usize, usize, String, String)> {
        match parse_zone(Path::new("z.toml"), text, None) {
            Ok(_) => Vec::new(),
            Err(errors) => errors
                .into_iter()
                .map(|e| (e.line, e.column, e.key, e.reason))
                .collect(),
        }
    }

    /// The line of `needle`'s `n`th occurrence (1-based lines, `n` from 0).
    fn line_of(text: &str, needle: &str, n: usize) -> usize {
        let at = text.match_indices(needle).nth(n).unwrap().0;
        text[..at].lines().count() + 1
    }

    #[test]
    fn a_large_good_file_loads_whole() {
        let text = big(25_000);
        let zone = parse_zone(Path::new("z.toml"), &text, None).expect("loads");
        // The apex, ns1 and every h{i}.
        assert_eq!(zone.nodes.len(), 25_002);
    }

    #[test]
    fn a_name_defined_twice_in_two_slices_is_a_duplicate_key_at_the_second() {
        let text = big(25_000) + "[names.\"h7\"]\nA = \"192.0.2.99\"\n";
        let line = line_of(&text, "[names.\"h7\"]", 0);
        assert_eq!(
            problems(&text),
            [(line, 8, "names.h7".into(), "duplicate key".into())]
        );
    }

    #[test]
    fn the_same_name_written_two_ways_is_named_with_its_first_line() {
        let text = big(25_000) + "[names.H7]\nA = \"192.0.2.99\"\n";
        let first = line_of(&text, "[names.h7]", 0);
        let line = line_of(&text, "[names.H7]", 0);
        assert_eq!(
            problems(&text),
            [(
                line,
                8,
                "names.H7".into(),
                format!("H7.x.test. is already defined at line {first}")
            )]
        );
    }

    #[test]
    fn a_syntax_error_in_a_late_slice_is_all_that_is_reported() {
        // A bad address early (a builder error) and a syntax error late: as for the
        // whole file, only the parse problem counts.
        let text = big(25_000).replacen("192.0.2.5\"", "192.0.2.500\"", 1)
            + "[names.late]\nA = 192.0.2.9\n";
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, line_of(&text, "A = 192.0.2.9", 0));
    }

    #[test]
    fn unknown_keys_in_every_slice_are_all_reported_with_the_builders_problems() {
        let text = big(25_000)
            .replacen("192.0.2.5\"", "192.0.2.500\"", 1)
            .replacen("[names.h20000]\nA", "[names.h20000]\nAA", 1)
            + "[names.late]\nTTL = 5\nA = \"192.0.2.9\"\n";
        let keys: Vec<String> = problems(&text).into_iter().map(|p| p.2).collect();
        // The table left without records by its unknown key is a problem of its own.
        assert_eq!(
            keys,
            [
                "names.h4.A",
                "names.h20000",
                "names.h20000.AA",
                "names.late.TTL"
            ]
        );
    }
}
