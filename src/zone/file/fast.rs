//! A reader for the `[names.NAME]` slices of a zone file (cut by `super::split`) that keep
//! to a strict, common subset of TOML: what people write by hand and what `roundel
//! import` writes.
//!
//! toml and serde read a slice through tokens, events, a document tree and the
//! deserializer's visitors: about half the CPU of loading a large zone. A names slice is
//! regular (headers, a TTL and record types whose values are strings, arrays of strings
//! or a `{ ttl = N, data = ... }` table), so it is read here in one pass into the same
//! entries, with the same spans.
//!
//! The reader gives up (`None`) on anything outside its subset and on anything toml would
//! report as a problem (a syntax error, an unknown or repeated key, a wrong type); the
//! caller then parses the slice with toml as before, so every message, position and key
//! path of a bad file stays what it was. The subset is deliberately narrower than TOML:
//! - headers `[names.KEY]` exactly, KEY bare (`A-Za-z0-9_-`) or a basic or literal
//!   string; keys bare, `ttl` or a record type of [`RECORD_TYPES`];
//! - integers in decimal digits only (no sign, underscore or leading zero);
//! - basic strings with the escapes of TOML 1.0, literal strings, neither multi-line;
//! - arrays of strings and of arrays of strings, over several lines, with comments and a
//!   trailing comma; inline tables on one line, without a trailing comma;
//! - whitespace is space and tab, a newline LF or CRLF; no control character but tab in
//!   strings or comments.

use std::ops::Range;

use hickory_proto::rr::RecordType;
use toml::Spanned;

use super::RECORD_TYPES;
use super::chunked::Entry;
use super::raw::{RawItem, RawNode, RawSet};

#[cfg(test)]
mod tests;

/// The entries of a names slice, exactly as toml and serde give them (sorted by name, spans
/// relative to the slice), or `None` when the slice is outside the subset read here or is
/// not a valid names slice.
pub(super) fn read(slice: &str) -> Option<Vec<Entry>> {
    let mut r = Reader {
        text: slice,
        b: slice.as_bytes(),
        at: 0,
    };
    // Generated zones hold a name per 30 to 40 bytes: one allocation for most slices.
    let mut entries: Vec<Entry> = Vec::with_capacity(slice.len() / 32 + 1);
    let mut open: Option<Open> = None;
    loop {
        r.trivia()?;
        match r.peek() {
            None => break,
            Some(b'[') => {
                if let Some(done) = open.take() {
                    entries.push(done.close());
                }
                open = Some(r.header()?);
            }
            // A key before the first header would be a key of the document's root.
            Some(_) => r.key_value(open.as_mut()?)?,
        }
        r.end_of_line()?;
    }
    // Without a header, toml says that `names` is missing.
    entries.push(open?.close());
    // toml's tables are ordered maps (`BTreeMap`, without its `preserve_order` feature):
    // the names come out sorted. A table defined twice in one document is a problem for
    // toml: let it say so.
    sort_by_name(&mut entries);
    if entries
        .windows(2)
        .any(|w| w[0].0.get_ref() == w[1].0.get_ref())
    {
        return None;
    }
    Some(entries)
}

/// Sorts entries by name. An entry is some 110 bytes and most names differ in their first
/// eight: the sort moves 16-byte pairs of those eight bytes and an index, compares whole
/// names only on a tie, then puts each entry in its place once (at 200,000 names, a third
/// of the instructions of sorting the entries themselves).
fn sort_by_name(entries: &mut [Entry]) {
    let name = |i: u32| entries[i as usize].0.get_ref().as_bytes();
    let mut order: Vec<(u64, u32)> = (0..entries.len() as u32)
        .map(|i| {
            // Zero-padded, so that the prefixes' order never contradicts the names'.
            let mut head = [0u8; 8];
            let n = name(i);
            let len = n.len().min(8);
            head[..len].copy_from_slice(&n[..len]);
            (u64::from_be_bytes(head), i)
        })
        .collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| name(a.1).cmp(name(b.1))));
    // Entry `order[k].1` goes to `k`: follow each cycle of the permutation once, marking
    // the places done with their own index.
    let mut perm: Vec<u32> = order.into_iter().map(|(_, i)| i).collect();
    for start in 0..perm.len() {
        let mut at = start;
        while perm[at] as usize != at {
            let from = perm[at] as usize;
            perm[at] = at as u32;
            if from == start {
                break;
            }
            entries.swap(at, from);
            at = from;
        }
    }
}

/// A `[names.KEY]` table being read.
struct Open {
    key: Spanned<String>,
    /// The header, `[` to `]`: toml's span of a table.
    header: Range<usize>,
    ttl: Option<Spanned<i64>>,
    sets: Vec<(RecordType, Spanned<RawSet>)>,
}

impl Open {
    fn close(mut self) -> Entry {
        // As `RawNode`'s deserializer: the sets in the order of RECORD_TYPES.
        if self.sets.len() > 1 {
            self.sets.sort_by_key(|(t, _)| rank(*t));
        }
        let node = RawNode {
            ttl: self.ttl,
            sets: self.sets,
        };
        (self.key, Spanned::new(self.header, node))
    }
}

/// The position of a record type in [`RECORD_TYPES`].
fn rank(t: RecordType) -> usize {
    RECORD_TYPES
        .iter()
        .position(|(_, r)| *r == t)
        .unwrap_or(usize::MAX)
}

/// What a control character is to TOML: not allowed in strings or comments, but tab.
fn control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// A cursor over a slice: each method reads one thing at `at` and moves past it, or
/// returns `None` (the slice is then toml's to read).
struct Reader<'s> {
    text: &'s str,
    b: &'s [u8],
    at: usize,
}

impl<'s> Reader<'s> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Spaces and tabs.
    fn spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// A newline: LF or CRLF (a lone CR is not one).
    fn newline(&mut self) -> Option<()> {
        match self.peek()? {
            b'\n' => self.at += 1,
            b'\r' if self.b.get(self.at + 1) == Some(&b'\n') => self.at += 2,
            _ => return None,
        }
        Some(())
    }

    /// A comment from its `#` to the end of its line (not included).
    fn comment(&mut self) -> Option<()> {
        self.at += 1;
        while let Some(b) = self.peek() {
            if b == b'\n' || b == b'\r' {
                break;
            }
            if control(b) {
                return None;
            }
            self.at += 1;
        }
        Some(())
    }

    /// Whitespace, newlines and comments: between lines, and between an array's values.
    fn trivia(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.at += 1,
                Some(b'\n' | b'\r') => self.newline()?,
                Some(b'#') => self.comment()?,
                _ => return Some(()),
            }
        }
    }

    /// The end of a header or key/value line: whitespace, a comment, then a newline or
    /// the end of the slice.
    fn end_of_line(&mut self) -> Option<()> {
        self.spaces();
        if self.peek() == Some(b'#') {
            self.comment()?;
        }
        match self.peek() {
            None => Some(()),
            Some(_) => self.newline(),
        }
    }

    /// A bare key: letters, digits, `-` and `_`.
    fn bare_key(&mut self) -> Option<&'s str> {
        let start = self.at;
        while matches!(
            self.peek(),
            Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_')
        ) {
            self.at += 1;
        }
        (self.at > start).then(|| &self.text[start..self.at])
    }

    /// `[names.KEY]`, its key bare or quoted.
    fn header(&mut self) -> Option<Open> {
        let start = self.at;
        if !self.b[start..].starts_with(b"[names.") {
            return None;
        }
        self.at += "[names.".len();
        let key_start = self.at;
        let key = match self.peek()? {
            b'"' | b'\'' => self.string()?.1,
            _ => self.bare_key()?.to_owned(),
        };
        let key = Spanned::new(key_start..self.at, key);
        self.eat(b']')?;
        Some(Open {
            key,
            header: start..self.at,
            ttl: None,
            // As `RawNode`'s deserializer: most names hold one RRset.
            sets: Vec::with_capacity(1),
        })
    }

    /// `ttl = N` or `TYPE = value` in the open table; a key set twice is a problem.
    fn key_value(&mut self, open: &mut Open) -> Option<()> {
        let key = self.bare_key()?;
        self.spaces();
        self.eat(b'=')?;
        self.spaces();
        if key == "ttl" {
            if open.ttl.is_some() {
                return None;
            }
            open.ttl = Some(self.integer()?);
            return Some(());
        }
        let (_, rtype) = RECORD_TYPES.iter().find(|(k, _)| *k == key)?;
        if open.sets.iter().any(|(t, _)| t == rtype) {
            return None;
        }
        let set = if self.peek()? == b'{' {
            self.inline_table()?
        } else {
            self.data()?
        };
        open.sets.push((*rtype, set));
        Some(())
    }

    /// A non-negative decimal integer of at most 18 digits (so it fits an i64).
    fn integer(&mut self) -> Option<Spanned<i64>> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let digits = &self.text[start..self.at];
        if digits.is_empty() || digits.len() > 18 || (digits.len() > 1 && digits.starts_with('0')) {
            return None;
        }
        Some(Spanned::new(start..self.at, digits.parse().ok()?))
    }

    /// A record set written as a string or an array (not a table).
    fn data(&mut self) -> Option<Spanned<RawSet>> {
        match self.peek()? {
            b'"' | b'\'' => {
                let (span, text) = self.string()?;
                let set = RawSet {
                    ttl: None,
                    items: vec![(None, RawItem::Text(text))],
                    single: true,
                };
                Some(Spanned::new(span, set))
            }
            b'[' => {
                let start = self.at;
                let items = self.items()?;
                let set = RawSet {
                    ttl: None,
                    items,
                    single: false,
                };
                Some(Spanned::new(start..self.at, set))
            }
            _ => None,
        }
    }

    /// `{ ttl = N, data = ... }` (`ttl` optional, either order), on one line.
    fn inline_table(&mut self) -> Option<Spanned<RawSet>> {
        let start = self.at;
        self.at += 1;
        let mut ttl = None;
        let mut data: Option<Spanned<RawSet>> = None;
        self.spaces();
        loop {
            let key = self.bare_key()?;
            self.spaces();
            self.eat(b'=')?;
            self.spaces();
            match key {
                "ttl" if ttl.is_none() => ttl = Some(self.integer()?),
                "data" if data.is_none() => data = Some(self.data()?),
                _ => return None,
            }
            self.spaces();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.spaces();
                }
                b'}' => {
                    self.at += 1;
                    break;
                }
                _ => return None,
            }
        }
        // As `SetVisitor::visit_map`: a string item takes the span of `data`.
        let data = data?;
        let span = data.span();
        let mut inner = data.into_inner();
        for item in &mut inner.items {
            item.0.get_or_insert(span.clone());
        }
        let set = RawSet {
            ttl,
            items: inner.items,
            single: inner.single,
        };
        Some(Spanned::new(start..self.at, set))
    }

    /// `[ item, ... ]`: strings and arrays of strings, each with its span.
    fn items(&mut self) -> Option<Vec<(Option<Range<usize>>, RawItem)>> {
        self.array(|r| {
            let start = r.at;
            match r.peek()? {
                b'"' | b'\'' => {
                    let (span, text) = r.string()?;
                    Some((Some(span), RawItem::Text(text)))
                }
                b'[' => {
                    let parts = r.parts()?;
                    Some((Some(start..r.at), RawItem::Parts(parts)))
                }
                _ => None,
            }
        })
    }

    /// `[ "string", ... ]`: one TXT record's character-strings.
    fn parts(&mut self) -> Option<Vec<String>> {
        self.array(|r| match r.peek()? {
            b'"' | b'\'' => Some(r.string()?.1),
            _ => None,
        })
    }

    /// An array from its `[` to past its `]`, each value read by `value` from the value's
    /// first byte; newlines, comments and a trailing comma may come between.
    fn array<T>(&mut self, mut value: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut out = Vec::new();
        self.at += 1;
        loop {
            self.trivia()?;
            if self.peek()? == b']' {
                break;
            }
            out.push(value(self)?);
            if !self.after_value()? {
                break;
            }
        }
        self.at += 1;
        Some(out)
    }

    /// After an array's value: `true` past a comma (more may come), `false` at the `]`
    /// (not consumed).
    fn after_value(&mut self) -> Option<bool> {
        self.trivia()?;
        match self.peek()? {
            b',' => {
                self.at += 1;
                Some(true)
            }
            b']' => Some(false),
            _ => None,
        }
    }

    /// A basic (`"`) or literal (`'`) string on one line: its span, quotes included, and
    /// its value.
    fn string(&mut self) -> Option<(Range<usize>, String)> {
        let start = self.at;
        let quote = self.b[start];
        let mut i = start + 1;
        loop {
            let b = *self.b.get(i)?;
            if b == quote {
                break;
            }
            if b == b'\\' && quote == b'"' {
                return self.escaped(start);
            }
            if control(b) {
                return None;
            }
            i += 1;
        }
        // `""` then a quote opens a multi-line string (what follows a value would refuse
        // it too; this says why).
        if i == start + 1 && self.b.get(i + 1) == Some(&quote) {
            return None;
        }
        self.at = i + 1;
        Some((start..self.at, self.text[start + 1..i].to_owned()))
    }

    /// A basic string holding escapes, from its opening quote at `start`.
    fn escaped(&mut self, start: usize) -> Option<(Range<usize>, String)> {
        let mut out = String::new();
        let mut i = start + 1;
        let mut run = i;
        loop {
            let b = *self.b.get(i)?;
            match b {
                b'"' => {
                    out.push_str(&self.text[run..i]);
                    self.at = i + 1;
                    return Some((start..self.at, out));
                }
                b'\\' => {
                    out.push_str(&self.text[run..i]);
                    let (c, len) = match *self.b.get(i + 1)? {
                        b'b' => ('\u{8}', 2),
                        b't' => ('\t', 2),
                        b'n' => ('\n', 2),
                        b'f' => ('\u{c}', 2),
                        b'r' => ('\r', 2),
                        b'"' => ('"', 2),
                        b'\\' => ('\\', 2),
                        b'u' => (self.unicode(i + 2, 4)?, 6),
                        b'U' => (self.unicode(i + 2, 8)?, 10),
                        // TOML 1.1's `\e` and `\x`, and errors: toml's to read.
                        _ => return None,
                    };
                    out.push(c);
                    i += len;
                    run = i;
                }
                _ if control(b) => return None,
                _ => i += 1,
            }
        }
    }

    /// The scalar value written as `digits` hex digits at `at`.
    fn unicode(&self, at: usize, digits: usize) -> Option<char> {
        let hex = self.b.get(at..at + digits)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let value = u32::from_str_radix(&self.text[at..at + digits], 16).ok()?;
        char::from_u32(value)
    }
}
