//! Errors found while loading zone and configuration files, each pinned to a file, line and
//! column, and the [`SourceMap`] that pins them. The base of the crate: `config`, `pool` and
//! `zone` all report through it, and it imports nothing of the crate.
//!
//! Operators fix zone files by hand, so every problem names where it is and what key it is
//! about, in the `file:line:column: key: reason` shape that compilers and `named-checkzone`
//! use. A load collects every problem it can find rather than stopping at the first.

pub mod unknown_keys;

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one zone file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem is about the file as a whole.
    pub line: usize,
    /// 1-based column (in characters); 0 when the problem is about the file as a whole.
    pub column: usize,
    /// The key the problem is about, in dotted TOML form (`names.www.A`), or empty.
    pub key: String,
    /// What is wrong, phrased for the person editing the file.
    pub reason: String,
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ZoneError {}

/// Every problem found in one load, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneErrors(pub Vec<ZoneError>);

impl fmt::Display for ZoneErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ZoneErrors {}

/// Maps byte offsets of one file's text to 1-based line and column numbers, and collects
/// the problems found in that file.
///
/// Loaders get spans (byte ranges) from `toml::Spanned`; this turns them into the positions
/// an editor shows.
#[derive(Debug)]
pub struct SourceMap<'a> {
    file: &'a Path,
    text: &'a str,
    /// Byte offset of the start of each line, built on the first [`SourceMap::position`]
    /// past [`DIRECT_SCAN`]: a good file needs only positions near its top (the origin), and
    /// the index of a million-name file is some thirty megabytes at the load's peak.
    line_starts: std::cell::OnceCell<Vec<usize>>,
    errors: Vec<ZoneError>,
}

/// Positions up to this byte offset are found by counting newlines, without the line
/// index.
const DIRECT_SCAN: usize = 64 * 1024;

impl<'a> SourceMap<'a> {
    /// A map over `text`, the contents of `file`.
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Self {
            file,
            text,
            line_starts: std::cell::OnceCell::new(),
            errors: Vec::new(),
        }
    }

    /// The file this map is for.
    pub fn file(&self) -> &Path {
        self.file
    }

    /// 1-based (line, column) of a byte offset; the column counts characters.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let (line, start) = if offset <= DIRECT_SCAN && self.line_starts.get().is_none() {
            let before = &self.text.as_bytes()[..offset];
            let newlines = before.iter().filter(|&&b| b == b'\n').count();
            let start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            (newlines + 1, start)
        } else {
            let starts = self.line_starts.get_or_init(|| {
                let mut starts = vec![0];
                starts.extend(self.text.match_indices('\n').map(|(i, _)| i + 1));
                starts
            });
            let line = starts.partition_point(|&s| s <= offset);
            (line, starts[line - 1])
        };
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }

    /// A problem at the byte offset `at` (use the start of the offending value's span).
    pub fn error_at(
        &self,
        at: usize,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> ZoneError {
        let (line, column) = self.position(at);
        ZoneError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// Records a problem at the byte offset `at`.
    pub fn report(&mut self, at: usize, key: impl Into<String>, reason: impl Into<String>) {
        let e = self.error_at(at, key, reason);
        self.errors.push(e);
    }

    /// Records a problem about the file as a whole (no position).
    pub fn report_file(&mut self, reason: impl Into<String>) {
        self.errors.push(ZoneError {
            file: self.file.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            reason: reason.into(),
        });
    }

    /// Whether any problem has been recorded.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The problems recorded so far, sorted by position.
    pub fn into_errors(mut self) -> Vec<ZoneError> {
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors
    }
}

/// A key as written in a dotted TOML path (`names.www`, `names."*.lb"`): bare when it
/// can be, quoted as TOML quotes it otherwise, so an error's key path can be pasted back
/// into the file.
pub fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_owned()
    } else if k
        .bytes()
        .all(|b| matches!(b, b' '..=b'~') && !matches!(b, b'"' | b'\\' | b'\''))
    {
        // What the TOML writer gives for these (a basic string without escapes), without
        // its machinery: a large zone file has one such key per name.
        format!("\"{k}\"")
    } else {
        toml::Value::String(k.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_the_same_before_and_after_the_line_index_is_built() {
        // Lines of every length, some with multi-byte characters, past the direct scan.
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&"é".repeat(i % 7));
            text.push_str(&"x".repeat(i % 13));
            text.push('\n');
        }
        assert!(text.len() > 2 * DIRECT_SCAN);
        let offsets: Vec<usize> = (0..text.len())
            .step_by(97)
            .filter(|&o| text.is_char_boundary(o))
            .collect();
        let fresh = SourceMap::new(Path::new("f"), &text);
        let direct: Vec<_> = offsets
            .iter()
            .take_while(|&&o| o <= DIRECT_SCAN)
            .map(|&o| fresh.position(o))
            .collect();
        assert!(fresh.line_starts.get().is_none(), "no index below the scan");
        let indexed = SourceMap::new(Path::new("f"), &text);
        assert_eq!(indexed.position(text.len()).0, 20_001);
        assert!(indexed.line_starts.get().is_some());
        for (o, d) in offsets.iter().zip(&direct) {
            assert_eq!(indexed.position(*o), *d, "offset {o}");
        }
        assert_eq!(fresh.position(0), (1, 1));
        assert_eq!(fresh.position(text.find('\n').unwrap() + 1), (2, 1));
    }

    #[test]
    fn quoted_keys_are_what_the_toml_writer_gives() {
        for k in [
            "n0.h00",
            "*.x",
            "a b",
            "@",
            "x.example.test.",
            "~!#$%^&*()",
            "a'b",
            "a\"b",
            "é",
            "a\\b",
            "tab\t",
        ] {
            assert_eq!(
                toml_key(k),
                toml::Value::String(k.to_owned()).to_string(),
                "{k}"
            );
        }
    }

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let text = "a = 1\nbé = \"x\"\n";
        let map = SourceMap::new(Path::new("z.toml"), text);
        assert_eq!(map.position(0), (1, 1));
        assert_eq!(map.position(4), (1, 5));
        assert_eq!(map.position(6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(map.position(text.rfind('=').unwrap()), (2, 4));
    }

    #[test]
    fn display_names_file_line_column_key_and_reason() {
        let map = SourceMap::new(Path::new("zones/x.toml"), "\n  A = \"1.2.3\"\n");
        let e = map.error_at(7, "names.www.A", "not an IPv4 address: 1.2.3");
        assert_eq!(
            e.to_string(),
            "zones/x.toml:2:7: names.www.A: not an IPv4 address: 1.2.3"
        );
    }
}
