//! Domain names as written in master files: labels of raw bytes, escapes resolved.
//!
//! Kept apart from hickory's `Name` so that every label byte is known exactly, and so the
//! conversion can tell when a name holds something a Roundel zone file cannot (a dot or a
//! space inside a label) and refuse it rather than change it.

use hickory_proto::rr::Name;

/// Longest label (RFC 1035 section 2.3.4).
const MAX_LABEL: usize = 63;
/// Longest name in wire format (RFC 1035 section 2.3.4).
const MAX_WIRE: usize = 255;

/// An absolute domain name; the root has no labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DName {
    /// Labels, leftmost first, case as written.
    pub labels: Vec<Vec<u8>>,
}

impl DName {
    /// Parses `text` (escapes unresolved); a name without a trailing dot is relative to
    /// `origin`, and `@` is `origin` itself.
    pub fn parse(text: &str, origin: Option<&DName>) -> Result<DName, String> {
        let need_origin = || {
            origin.cloned().ok_or_else(|| {
                format!(
                    "{text:?} is relative, but no origin is known yet: add $ORIGIN or give --origin"
                )
            })
        };
        if text == "@" {
            return need_origin();
        }
        if text == "." {
            return Ok(DName { labels: vec![] });
        }
        if text.is_empty() {
            return Err("empty name".into());
        }
        let mut labels: Vec<Vec<u8>> = Vec::new();
        let mut label = Vec::new();
        let mut absolute = false;
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'.' => {
                    if label.is_empty() {
                        return Err(format!("{text:?} has an empty label"));
                    }
                    labels.push(std::mem::take(&mut label));
                    if i + 1 == bytes.len() {
                        absolute = true;
                    }
                    i += 1;
                }
                b'\\' => {
                    // One escape: `\DDD` or `\X`. A decimal escape is its ASCII digits (at
                    // most three; fewer is an error of `decode`), never a fixed 4 bytes,
                    // which could end inside a multi-byte character ("\0Ӷ").
                    let digits = bytes[i + 1..]
                        .iter()
                        .take(3)
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    let len = if digits > 0 {
                        1 + digits
                    } else {
                        1 + text[i + 1..].chars().next().map_or(0, char::len_utf8)
                    };
                    let end = (i + len).min(bytes.len());
                    label.extend(super::lexer::decode(&text[i..end])?);
                    i = end;
                }
                b => {
                    label.push(b);
                    i += 1;
                }
            }
        }
        if !label.is_empty() {
            labels.push(label);
        }
        if let Some(l) = labels.iter().find(|l| l.len() > MAX_LABEL) {
            return Err(format!(
                "{text:?}: a label of {} bytes is longer than {MAX_LABEL}",
                l.len()
            ));
        }
        let name = if absolute {
            DName { labels }
        } else {
            let mut o = need_origin()?;
            labels.append(&mut o.labels);
            DName { labels }
        };
        if name.wire_len() > MAX_WIRE {
            return Err(format!("{text:?} is longer than {MAX_WIRE} bytes"));
        }
        Ok(name)
    }

    /// Length in wire format.
    pub fn wire_len(&self) -> usize {
        self.labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1
    }

    /// Lowercase wire form: the key names are compared by (RFC 4343).
    pub fn key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire_len());
        for l in &self.labels {
            out.push(l.len() as u8);
            out.extend(l.iter().map(u8::to_ascii_lowercase));
        }
        out.push(0);
        out
    }

    /// Whether `self` is `zone` or below it.
    pub fn is_within(&self, zone: &DName) -> bool {
        let n = zone.labels.len();
        self.labels.len() >= n
            && self.labels[self.labels.len() - n..]
                .iter()
                .zip(&zone.labels)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// The name as hickory sees it.
    pub fn to_hickory(&self) -> Name {
        let mut n = Name::from_labels(self.labels.iter().map(Vec::as_slice))
            .expect("labels were checked for length");
        n.set_fqdn(true);
        n
    }

    /// Presentation form with escapes, for messages.
    pub fn display(&self) -> String {
        if self.labels.is_empty() {
            return ".".into();
        }
        let mut s = String::new();
        for l in &self.labels {
            for &b in l {
                match b {
                    b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                        s.push('\\');
                        s.push(b as char);
                    }
                    0x21..=0x7E => s.push(b as char),
                    _ => s.push_str(&format!("\\{b:03}")),
                }
            }
            s.push('.');
        }
        s
    }

    /// The name as a Roundel zone file writes it: relative to `origin` when it lies below
    /// it with the origin's labels spelled the same way, `@` for the origin, absolute
    /// otherwise. Fails for bytes Roundel names cannot hold (letters, digits, `-`, `_`,
    /// `/`, and `*` as a whole first label are allowed).
    pub fn roundel_text(&self, origin: &DName) -> Result<String, String> {
        for (i, l) in self.labels.iter().enumerate() {
            if l == b"*" && i == 0 {
                continue;
            }
            if let Some(&b) = l
                .iter()
                .find(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/')))
            {
                let shown = if b.is_ascii_graphic() {
                    format!("'{}'", b as char)
                } else {
                    format!("byte \\{b:03}")
                };
                return Err(format!(
                    "the name {} holds {shown}, which a Roundel zone file cannot express (names are letters, digits, '-', '_', '/', and '*' as a whole first label)",
                    self.display()
                ));
            }
        }
        let n = origin.labels.len();
        if self.labels.len() >= n && self.labels[self.labels.len() - n..] == origin.labels[..] {
            let head = &self.labels[..self.labels.len() - n];
            if head.is_empty() {
                return Ok("@".into());
            }
            return Ok(join(head));
        }
        if self.labels.is_empty() {
            return Ok(".".into());
        }
        Ok(format!("{}.", join(&self.labels)))
    }
}

fn join(labels: &[Vec<u8>]) -> String {
    labels
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> DName {
        DName::parse("example.test.", None).unwrap()
    }

    #[test]
    fn relative_names_and_at() {
        let o = origin();
        assert_eq!(
            DName::parse("www", Some(&o)).unwrap().display(),
            "www.example.test."
        );
        assert_eq!(DName::parse("@", Some(&o)).unwrap(), o);
        assert_eq!(DName::parse(".", Some(&o)).unwrap().labels.len(), 0);
        assert!(DName::parse("www", None).is_err());
    }

    #[test]
    fn escaped_dot_stays_in_its_label() {
        let n = DName::parse("a\\.b.example.test.", None).unwrap();
        assert_eq!(n.labels.len(), 3);
        assert_eq!(n.labels[0], b"a.b");
        assert!(
            n.roundel_text(&origin()).is_err(),
            "Roundel cannot write a dot in a label"
        );
        let d = DName::parse("\\065bc.example.test.", None).unwrap();
        assert_eq!(d.labels[0], b"Abc");
        assert_eq!(d.roundel_text(&origin()).unwrap(), "Abc");
    }

    #[test]
    fn a_short_decimal_escape_before_a_multibyte_character_is_an_error() {
        // Found by the master_file fuzz target: this panicked slicing inside 'Ӷ'.
        for text in ["\\0A\u{4f6}", "\\0\u{4f6}", "\\01\u{4f6}.", "x\\9\u{1F600}"] {
            let e = DName::parse(text, Some(&origin())).unwrap_err();
            assert!(e.contains("exactly three digits"), "{text:?}: {e}");
        }
        let n = DName::parse("\\065\u{4f6}.", None).unwrap();
        assert_eq!(n.labels[0], "A\u{4f6}".as_bytes());
    }

    #[test]
    fn roundel_text_relative_only_when_spelled_alike() {
        let o = origin();
        let n = DName::parse("www.EXAMPLE.test.", None).unwrap();
        assert!(n.is_within(&o));
        assert_eq!(n.roundel_text(&o).unwrap(), "www.EXAMPLE.test.");
        assert_eq!(
            DName::parse("*.apps", Some(&o))
                .unwrap()
                .roundel_text(&o)
                .unwrap(),
            "*.apps"
        );
    }
}
