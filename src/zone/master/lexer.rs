//! RFC 1035 section 5.1 presentation format, split into entries and tokens.
//!
//! An entry is one logical line: parentheses continue it over newlines, `;` starts a
//! comment outside quotes, and a quoted string keeps spaces, `;` and parentheses. Escapes
//! (`\X`, `\DDD`) are kept as written in each token's text, because their meaning depends
//! on the field: in a name `\.` is a dot inside a label, in a character-string it is just a
//! dot. [`decode`] resolves them for fields that are plain bytes.

/// One token of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The text as written, escapes unresolved, without the surrounding quotes.
    pub text: String,
    /// Whether it was written in double quotes.
    pub quoted: bool,
}

impl Token {
    /// An unquoted token.
    pub fn bare(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            quoted: false,
        }
    }
}

/// One logical line of a master file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line its first token is on.
    pub line: usize,
    /// The physical line started with a blank: the owner is the previous entry's
    /// (RFC 1035 section 5.1).
    pub blank_owner: bool,
    /// Its tokens, at least one.
    pub tokens: Vec<Token>,
}

/// A syntax error: 1-based line and what is wrong.
pub type LexError = (usize, String);

/// Splits master-file text into entries.
pub fn entries(text: &str) -> Result<Vec<Entry>, LexError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    // Line of the outermost open parenthesis, if any.
    let mut open: Option<usize> = None;
    let mut depth = 0usize;
    let mut tokens: Vec<Token> = Vec::new();
    let mut current: Option<String> = None;
    let mut entry_line = 1usize;
    let mut blank_owner = false;
    let mut at_line_start = true;

    fn finish(current: &mut Option<String>, tokens: &mut Vec<Token>) {
        if let Some(t) = current.take() {
            tokens.push(Token {
                text: t,
                quoted: false,
            });
        }
    }

    while let Some(c) = chars.next() {
        if at_line_start {
            at_line_start = false;
            if depth == 0 && tokens.is_empty() {
                blank_owner = c == ' ' || c == '\t';
                entry_line = line;
            }
        }
        match c {
            '\n' => {
                finish(&mut current, &mut tokens);
                if depth == 0 && !tokens.is_empty() {
                    out.push(Entry {
                        line: entry_line,
                        blank_owner,
                        tokens: std::mem::take(&mut tokens),
                    });
                }
                line += 1;
                at_line_start = true;
            }
            ' ' | '\t' | '\r' => finish(&mut current, &mut tokens),
            ';' => {
                finish(&mut current, &mut tokens);
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '(' => {
                finish(&mut current, &mut tokens);
                if depth == 0 {
                    open = Some(line);
                }
                depth += 1;
            }
            ')' => {
                finish(&mut current, &mut tokens);
                if depth == 0 {
                    return Err((line, "')' without an opening '('".into()));
                }
                depth -= 1;
            }
            '"' => {
                finish(&mut current, &mut tokens);
                if tokens.is_empty() && depth == 0 {
                    entry_line = line;
                }
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err((start, "unclosed quoted string: missing '\"'".into()));
                        }
                        Some('"') => break,
                        Some('\n') => {
                            return Err((
                                start,
                                "a quoted string runs past the end of the line: missing '\"'"
                                    .into(),
                            ));
                        }
                        Some('\\') => {
                            s.push('\\');
                            match chars.next() {
                                Some('\n') | None => {
                                    return Err((start, "'\\' at the end of a line".into()));
                                }
                                Some(e) => s.push(e),
                            }
                        }
                        Some(other) => s.push(other),
                    }
                }
                tokens.push(Token {
                    text: s,
                    quoted: true,
                });
            }
            '\\' => {
                let t = current.get_or_insert_with(String::new);
                t.push('\\');
                match chars.next() {
                    Some('\n') | None => return Err((line, "'\\' at the end of a line".into())),
                    Some(e) => t.push(e),
                }
            }
            other => current.get_or_insert_with(String::new).push(other),
        }
    }
    finish(&mut current, &mut tokens);
    if depth > 0 {
        return Err((
            open.unwrap_or(line),
            "unclosed '(': missing ')' before the end of the file".into(),
        ));
    }
    if !tokens.is_empty() {
        out.push(Entry {
            line: entry_line,
            blank_owner,
            tokens,
        });
    }
    Ok(out)
}

/// Resolves the escapes of a token into bytes: `\DDD` is the byte with that decimal value
/// (RFC 1035 section 5.1), `\X` is X itself.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let rest = &bytes[i + 1..];
        match rest.first() {
            None => return Err(format!("{text:?} ends with a lone '\\'")),
            Some(d) if d.is_ascii_digit() => {
                let digits = rest
                    .iter()
                    .take(3)
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits < 3 {
                    return Err(format!(
                        "{text:?}: a decimal escape is '\\' and exactly three digits (\\DDD)"
                    ));
                }
                let v = u32::from(rest[0] - b'0') * 100
                    + u32::from(rest[1] - b'0') * 10
                    + u32::from(rest[2] - b'0');
                let Ok(b) = u8::try_from(v) else {
                    return Err(format!("{text:?}: \\{v:03} is not a byte value (0 to 255)"));
                };
                out.push(b);
                i += 4;
            }
            Some(_) => {
                // `\X`: the character itself, all of its UTF-8 bytes.
                let ch = text[i + 1..].chars().next().expect("a byte follows");
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += 1 + ch.len_utf8();
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(e: &Entry) -> Vec<&str> {
        e.tokens.iter().map(|t| t.text.as_str()).collect()
    }

    #[test]
    fn parentheses_continue_an_entry_over_lines() {
        let e =
            entries("a TXT ( \"v=DKIM1; k=rsa; \"\n  \"p=MIIB\" ) ; key\nb A 192.0.2.1\n").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(texts(&e[0]), ["a", "TXT", "v=DKIM1; k=rsa; ", "p=MIIB"]);
        assert_eq!(e[0].line, 1);
        assert_eq!(e[1].line, 3);
    }

    #[test]
    fn one_line_parentheses_with_semicolons_in_quotes() {
        let e = entries("x TXT ( \"a; b\" \"c\" )").unwrap();
        assert_eq!(texts(&e[0]), ["x", "TXT", "a; b", "c"]);
        assert!(e[0].tokens[2].quoted);
    }

    #[test]
    fn unclosed_parenthesis_names_its_line() {
        let err = entries("@ SOA ns h (\n 1 2 3\n").unwrap_err();
        assert_eq!(err.0, 1);
        assert!(err.1.contains("missing ')'"), "{}", err.1);
    }

    #[test]
    fn blank_owner_is_noticed() {
        let e = entries("www A 192.0.2.1\n\tAAAA 2001:db8::1\n").unwrap();
        assert!(!e[0].blank_owner);
        assert!(e[1].blank_owner);
    }

    #[test]
    fn decimal_escapes_are_bytes() {
        assert_eq!(decode("\\065BC").unwrap(), b"ABC");
        assert_eq!(decode("caf\\195\\169").unwrap(), "café".as_bytes());
        assert_eq!(decode("caf\\195\\169").unwrap().len(), 5);
        assert_eq!(decode("a\\\"b\\;c").unwrap(), b"a\"b;c");
        assert!(decode("\\256").is_err());
        assert!(decode("\\12").is_err());
    }
}
