//! Where a zone file's text can be cut so that its `[names.NAME]` tables are parsed a
//! slice at a time.
//!
//! The TOML parser first turns the whole text into tokens, then into events, then into a
//! document tree, and only then does serde read it: at 1,000,000 names those transient
//! structures peaked at five times the memory of the finished zone. A `[names.NAME]`
//! table is complete in itself (its keys are a TTL and record types, whose values are
//! strings, arrays or inline tables), so a run of them can be parsed apart from the rest
//! of the file, a slice of [`CHUNK_BYTES`] at a time, and merged by name.
//!
//! Cutting is conservative: a cut is made only before a standard table header that is
//! exactly `[names.KEY]`, at the start of a line, outside any array or inline table, as
//! the same lexer that the parser uses sees it (so a header-like line inside a multi-line
//! string is never cut at). Whatever is not cut out is parsed as before, so a file with no
//! such headers is parsed exactly as a whole. Every byte of the file lies in exactly one
//! parsed part; the one rule of TOML that spans parts, that a table is defined once, is
//! checked by the builder, which sees every name (`super::build`).

use std::ops::Range;

use toml_parser::Source;
use toml_parser::lexer::{Token, TokenKind};

/// Smallest slice of `[names.*]` tables parsed at once: about 5,000 names of a typical
/// zone. The parser's transient memory is some 30 times the slice, so this keeps it near
/// 8 MB whatever the size of the file, while the cost per slice stays negligible.
pub(super) const CHUNK_BYTES: usize = 256 * 1024;

/// The slices of `text` made of `[names.KEY]` tables only, in file order, and how many
/// such tables they hold. Each slice starts at such a header and ends where the next slice
/// or the next other header starts (or at the end of the text). Pure: it only reads `text`.
pub(super) fn names_chunks(text: &str, chunk_bytes: usize) -> (Vec<Range<usize>>, usize) {
    let mut chunks: Vec<Range<usize>> = Vec::new();
    let mut tables = 0;
    // The slice being grown: its start, when the last header seen was a names header.
    let mut open: Option<usize> = None;
    let mut headers = Headers::new(text);
    while let Some((at, names)) = headers.next_header() {
        tables += usize::from(names);
        match (open, names) {
            (Some(start), true) if at - start >= chunk_bytes => {
                chunks.push(start..at);
                open = Some(at);
            }
            (Some(_), true) => {}
            (None, true) => open = Some(at),
            (Some(start), false) => {
                chunks.push(start..at);
                open = None;
            }
            (None, false) => {}
        }
    }
    if let Some(start) = open {
        chunks.push(start..text.len());
    }
    (chunks, tables)
}

/// The table headers of a text, as the TOML lexer sees them.
struct Headers<'i> {
    source: Source<'i>,
    tokens: std::iter::Peekable<toml_parser::lexer::Lexer<'i>>,
    /// Open `[` and `{` of values: a `[` inside one is an array, not a header.
    depth: usize,
    /// Only whitespace since the last newline (or the start of the text).
    line_start: bool,
}

impl<'i> Headers<'i> {
    fn new(text: &'i str) -> Self {
        let source = Source::new(text);
        Headers {
            source,
            tokens: source.lex().peekable(),
            depth: 0,
            line_start: true,
        }
    }

    /// The offset of the next table header's `[`, and whether it is `[names.KEY]`.
    fn next_header(&mut self) -> Option<(usize, bool)> {
        while let Some(token) = self.tokens.next() {
            match token.kind() {
                TokenKind::Newline => self.line_start = true,
                TokenKind::Whitespace => {}
                TokenKind::LeftSquareBracket if self.depth == 0 && self.line_start => {
                    self.line_start = false;
                    let at = token.span().start();
                    return Some((at, self.names_header()));
                }
                TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                    self.depth += 1;
                    self.line_start = false;
                }
                TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                    self.depth = self.depth.saturating_sub(1);
                    self.line_start = false;
                }
                _ => self.line_start = false,
            }
        }
        None
    }

    /// Reads a header after its `[` up to its `]` (or the end of its line, if it is
    /// malformed: the parser will say so) and says whether it is `[names.KEY]`.
    fn names_header(&mut self) -> bool {
        let mut keys: Vec<Token> = Vec::with_capacity(2);
        let mut shape_ok = true;
        let mut expect_key = true;
        // `[[` opens an array of tables, never a names table.
        if self
            .tokens
            .peek()
            .is_some_and(|t| t.kind() == TokenKind::LeftSquareBracket)
        {
            shape_ok = false;
        }
        while let Some(token) = self.tokens.peek().copied() {
            match token.kind() {
                TokenKind::Newline | TokenKind::Eof => return false,
                _ => {
                    self.tokens.next();
                }
            }
            match token.kind() {
                TokenKind::RightSquareBracket => {
                    return shape_ok && !expect_key && keys.len() == 2 && self.is_names(keys[0]);
                }
                TokenKind::Whitespace => {}
                TokenKind::Dot if !expect_key => expect_key = true,
                TokenKind::Atom | TokenKind::BasicString | TokenKind::LiteralString
                    if expect_key =>
                {
                    keys.push(token);
                    expect_key = false;
                }
                _ => shape_ok = false,
            }
        }
        false
    }

    /// Whether a key token spells `names` (bare, or quoted without escapes).
    fn is_names(&self, key: Token) -> bool {
        let Some(raw) = self.source.get(key.span()) else {
            return false;
        };
        let s = raw.as_str();
        let inner = match key.kind() {
            TokenKind::Atom => Some(s),
            TokenKind::BasicString | TokenKind::LiteralString => {
                s.get(1..s.len().saturating_sub(1))
            }
            _ => None,
        };
        inner == Some("names")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cuts(text: &str) -> Vec<&str> {
        let (chunks, tables) = names_chunks(text, 1);
        assert_eq!(chunks.len(), tables, "one table per slice");
        chunks.into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn each_names_table_is_a_slice_and_others_stay_whole() {
        let text = "origin = \"x.\"\n[soa]\nmname = \"a\"\n[names.a]\nA = \"1\"\n\
                    [names.\"b.c\"]\nA = [\n  \"2\",\n]\n[pools.p]\nx = 1\n[names.d]\nA = \"3\"\n";
        assert_eq!(
            cuts(text),
            [
                "[names.a]\nA = \"1\"\n",
                "[names.\"b.c\"]\nA = [\n  \"2\",\n]\n",
                "[names.d]\nA = \"3\"\n"
            ]
        );
    }

    #[test]
    fn slices_grow_to_the_chunk_size() {
        let text = "[names.a]\nA = \"1\"\n[names.b]\nA = \"2\"\n[names.c]\nA = \"3\"\n";
        let (all, tables) = names_chunks(text, 1 << 20);
        assert_eq!(tables, 3);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0], 0..text.len());
        let (two, _) = names_chunks(text, 20);
        assert_eq!(two.len(), 2, "{two:?}");
        assert_eq!(two[0].end, two[1].start);
    }

    #[test]
    fn no_cut_inside_strings_arrays_or_other_headers() {
        for text in [
            // A header-like line inside a multi-line string.
            "x = \"\"\"\n[names.a]\nA = \"1\"\n\"\"\"\n",
            "x = '''\n[names.a]\n'''\n",
            // A `[` at the start of a line inside a multi-line array.
            "x = [\n[names.a],\n]\n",
            // Arrays of tables, deeper tables, other tables, the names table itself.
            "[[names.a]]\nA = \"1\"\n",
            "[names.a.b]\nA = \"1\"\n",
            "[names]\na = { A = \"1\" }\n",
            "[name.a]\n",
            "[\"na\\u006des\".a]\n",
            // Not at the start of a line, or malformed.
            "x = 1 [names.a]\n",
            "[names.a\nA = \"1\"\n",
            "[names..a]\n",
        ] {
            assert_eq!(cuts(text), Vec::<&str>::new(), "{text:?}");
        }
    }

    #[test]
    fn quoted_and_spaced_headers_are_names_headers() {
        let text = "  [ 'names' . \"a b\" ] # c\nA = \"1\"\n[\"names\".b]\n";
        assert_eq!(
            cuts(text),
            ["[ 'names' . \"a b\" ] # c\nA = \"1\"\n", "[\"names\".b]\n"]
        );
    }
}
