//! Unknown keys in TOML files, all of them, without hiding the file's other problems.
//!
//! serde's `deny_unknown_fields` stops at the first unknown key, so a typo hid every other
//! problem of the file. [`parse`] reports the unknown key with its full key path and the
//! nearest valid key ("did you mean `ttl`?", by edit distance), blanks it out of a copy
//! of the text (byte offsets unchanged, so every later position is still right) and parses
//! again, bounded, until no unknown key is left; the caller then validates what remains
//! and reports the rest.

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Most unknown keys collected from one file before giving up.
pub const MAX_UNKNOWN: usize = 64;

/// One problem found while parsing: where, the key path, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    /// Byte offset in the text.
    pub at: usize,
    /// Dotted key path (`pools.web.check.intervall`), empty when unknown.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Parses `text` as `T`. Every unknown key is a problem; the value is parsed from the text
/// without them. `None` when the text does not parse for another reason (which is then the
/// last problem).
pub fn parse<T: DeserializeOwned>(text: &str) -> (Option<T>, Vec<KeyProblem>) {
    let (v, mut problems) = parse_unsorted(text);
    // serde meets keys in its own order; people read files top to bottom.
    problems.sort_by_key(|p| p.at);
    (v, problems)
}

fn parse_unsorted<T: DeserializeOwned>(text: &str) -> (Option<T>, Vec<KeyProblem>) {
    let mut work = text.to_owned();
    let mut problems = Vec::new();
    for _ in 0..=MAX_UNKNOWN {
        let e = match toml::from_str::<T>(&work) {
            Ok(v) => return (Some(v), problems),
            Err(e) => e,
        };
        let at = e.span().map_or(0, |s| s.start);
        let message = e.message().trim().to_owned();
        let unknown_name = unknown_field(&message).map(|u| u.0);
        let path = key_path(&work, at, unknown_name.as_deref());
        let Some((unknown, expected)) = unknown_field(&message) else {
            problems.push(KeyProblem {
                at,
                key: path.map(|p| p.0).unwrap_or_default(),
                reason: message,
            });
            return (None, problems);
        };
        let mut reason = format!("unknown key `{unknown}`");
        if let Some(best) = nearest(&unknown, &expected) {
            reason += &format!("; did you mean `{best}`?");
        }
        if !expected.is_empty() {
            reason += &format!(" (valid here: {})", expected.join(", "));
        }
        let Some((key, end)) = path else {
            problems.push(KeyProblem {
                at,
                key: String::new(),
                reason,
            });
            return (None, problems);
        };
        // The error may point at the inline table holding the key: report the key itself.
        let at = key_start(&work, &key).unwrap_or(at);
        problems.push(KeyProblem { at, key, reason });
        blank(&mut work, at, end);
    }
    (None, problems)
}

/// `unknown field `x`, expected one of `a`, `b`` -> ("x", ["a", "b"]).
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((name.to_owned(), expected))
}

/// The nearest of `candidates` to `word` when it is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (distance(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(w.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The dotted path of the key starting at byte `at` (or called `name` in the inline table
/// starting there), and the end of its value.
fn key_path(text: &str, at: usize, name: Option<&str>) -> Option<(String, usize)> {
    let doc = DeTable::parse(text).ok()?;
    find(doc.get_ref(), at, name, "", false)
}

/// Byte offset of the key at dotted `path` (for inline tables, whose errors point at `{`).
fn key_start(text: &str, path: &str) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    fn walk(t: &DeTable<'_>, prefix: &str, want: &str) -> Option<usize> {
        for (k, v) in t {
            let name = super::toml_key(k.get_ref());
            let p = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            if p == want {
                return Some(k.span().start);
            }
            if want.starts_with(&p)
                && let DeValue::Table(inner) = v.get_ref()
                && let Some(found) = walk(inner, &p, want)
            {
                return Some(found);
            }
        }
        None
    }
    walk(doc.get_ref(), "", path)
}

fn find(
    table: &DeTable<'_>,
    at: usize,
    name: Option<&str>,
    prefix: &str,
    here: bool,
) -> Option<(String, usize)> {
    for (k, v) in table {
        let seg = super::toml_key(k.get_ref());
        let path = if prefix.is_empty() {
            seg
        } else {
            format!("{prefix}.{seg}")
        };
        if k.span().start == at || (here && Some(k.get_ref().as_ref()) == name) {
            return Some((path, v.span().end.max(k.span().end)));
        }
        if let Some(found) = find_value(v, at, name, &path) {
            return Some(found);
        }
    }
    None
}

fn find_value(
    v: &Spanned<DeValue<'_>>,
    at: usize,
    name: Option<&str>,
    path: &str,
) -> Option<(String, usize)> {
    match v.get_ref() {
        DeValue::Table(t) => find(t, at, name, path, v.span().start == at),
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| find_value(x, at, name, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// Replaces `key = value` (bytes `start..end`, and a comma right after it) with spaces,
/// keeping newlines so that every offset and line stays where it was.
fn blank(work: &mut String, start: usize, end: usize) {
    let mut bytes = std::mem::take(work).into_bytes();
    let mut end = end.min(bytes.len());
    let mut j = end;
    while j < bytes.len() && matches!(bytes[j], b' ' | b'\t') {
        j += 1;
    }
    if bytes.get(j) == Some(&b',') {
        end = j + 1;
    }
    for b in &mut bytes[start..end] {
        if *b != b'\n' {
            *b = b' ';
        }
    }
    *work = String::from_utf8(bytes).unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        interval: Option<u32>,
        timeout: Option<u32>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        ttl: Option<u32>,
        origin: Option<String>,
        check: Option<Inner>,
    }

    #[test]
    fn every_unknown_key_with_its_path_and_a_suggestion() {
        let text = "tll = 3\norigin = \"x\"\n[check]\nintervall = 5\ntimeout = 1\n";
        let (doc, problems) = parse::<Doc>(text);
        let doc = doc.expect("parsed without the unknown keys");
        assert_eq!(doc.check.unwrap().timeout, Some(1));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].key, "tll");
        assert!(
            problems[0].reason.contains("did you mean `ttl`?"),
            "{problems:?}"
        );
        assert_eq!(problems[0].at, 0);
        assert_eq!(problems[1].key, "check.intervall");
        assert!(
            problems[1].reason.contains("did you mean `interval`?"),
            "{problems:?}"
        );
        assert_eq!(&text[problems[1].at..problems[1].at + 9], "intervall");
    }

    #[test]
    fn inline_tables_and_far_off_names() {
        let (doc, problems) = parse::<Doc>("check = { interval = 1, colour = 2 }\n");
        assert!(doc.is_some());
        assert_eq!(problems[0].key, "check.colour");
        assert!(!problems[0].reason.contains("did you mean"), "{problems:?}");
    }

    #[test]
    fn other_errors_end_the_parse() {
        let (doc, problems) = parse::<Doc>("tll = 1\nttl = \"x\"\n");
        assert!(doc.is_none());
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
