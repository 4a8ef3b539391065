//! BIND's `$GENERATE` directive: one template, a range of records.
//!
//! `$GENERATE start-stop[/step] lhs [ttl] [class] type rhs` writes one entry per value of
//! the iterator. In `lhs` and `rhs`, `$` is the value and `${offset,width,base}` the value
//! plus `offset`, zero-padded to `width`, in base `d`, `o`, `x`, `X`, or `n`/`N` (reversed
//! nibbles with dots, for ip6.arpa); `\$` is a literal dollar sign. The rhs, quoted or not,
//! is the record data, read again as master-file text.

use super::lexer::Token;
use super::rdata::is_type;

/// Most entries one directive may produce (BIND refuses far larger ranges too).
pub const MAX_GENERATED: u64 = 65_536;

/// The master-file lines `$GENERATE` with `args` (the tokens after the keyword) stands for.
pub fn expand(args: &[Token]) -> Result<Vec<String>, String> {
    let usage = "$GENERATE start-stop[/step] lhs [ttl] [class] type rhs";
    if args.len() < 4 {
        return Err(format!("too few fields: {usage}"));
    }
    let (start, stop, step) = range(&args[0].text)?;
    let Some(type_at) = (2..args.len()).find(|&i| !args[i].quoted && is_type(&args[i].text)) else {
        return Err(format!("no record type: {usage}"));
    };
    if type_at + 1 >= args.len() {
        return Err(format!("no rhs after the type: {usage}"));
    }
    let middle: Vec<&str> = args[2..=type_at].iter().map(|t| t.text.as_str()).collect();
    let rhs: Vec<&str> = args[type_at + 1..]
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    let rhs = rhs.join(" ");
    let mut out = Vec::new();
    let mut i = start;
    while i <= stop {
        let lhs = substitute(&args[1].text, i)?;
        let data = substitute(&rhs, i)?;
        out.push(format!("{lhs} {} {data}", middle.join(" ")));
        i += step;
    }
    Ok(out)
}

/// `start-stop[/step]`.
fn range(text: &str) -> Result<(u64, u64, u64), String> {
    let bad = || format!("range {text:?}: start-stop or start-stop/step, in decimal");
    let (span, step) = match text.split_once('/') {
        Some((s, st)) => (s, st.parse::<u64>().map_err(|_| bad())?),
        None => (text, 1),
    };
    let (a, b) = span.split_once('-').ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if step == 0 || a > b {
        return Err(bad());
    }
    if (b - a) / step + 1 > MAX_GENERATED {
        return Err(format!(
            "range {text:?} makes more than {MAX_GENERATED} records"
        ));
    }
    Ok((a, b, step))
}

/// Replaces `$` and `${offset,width,base}` in `template` with the iterator value `i`.
fn substitute(template: &str, i: u64) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'$') => {
                chars.next();
                out.push('$');
            }
            '\\' => {
                out.push('\\');
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                let mut spec = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => spec.push(ch),
                        None => return Err(format!("{template:?}: '${{' without '}}'")),
                    }
                }
                out.push_str(&modified(&spec, i)?);
            }
            '$' => out.push_str(&i.to_string()),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The value for a `${offset,width,base}` modifier.
fn modified(spec: &str, i: u64) -> Result<String, String> {
    let bad = || {
        format!("${{{spec}}}: the modifier is ${{offset[,width[,base]]}}, base one of d o x X n N")
    };
    let mut parts = spec.split(',');
    let offset: i64 = parts
        .next()
        .unwrap_or("0")
        .trim()
        .parse()
        .map_err(|_| bad())?;
    let width: usize = match parts.next() {
        Some(w) => w.trim().parse().map_err(|_| bad())?,
        None => 0,
    };
    let base = parts.next().map_or("d", str::trim);
    if parts.next().is_some() {
        return Err(bad());
    }
    let v = i as i64 + offset;
    if v < 0 {
        return Err(format!("${{{spec}}}: the value {v} is negative"));
    }
    let v = v as u64;
    Ok(match base {
        "d" => format!("{v:0width$}"),
        "o" => format!("{v:0width$o}"),
        "x" => format!("{v:0width$x}"),
        "X" => format!("{v:0width$X}"),
        "n" | "N" => nibbles(v, width, base == "N"),
        _ => return Err(bad()),
    })
}

/// Hex digits least significant first, dot-separated, at least `width` characters counting
/// the dots (as BIND writes them for ip6.arpa owners).
fn nibbles(mut v: u64, mut width: usize, upper: bool) -> String {
    let digits = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = String::new();
    loop {
        out.push(digits[(v & 0xf) as usize] as char);
        v >>= 4;
        width = width.saturating_sub(1);
        if width > 0 || v != 0 {
            out.push('.');
            width = width.saturating_sub(1);
        }
        if v == 0 && width == 0 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token> {
        s.split(' ').map(Token::bare).collect()
    }

    #[test]
    fn plain_and_stepped_ranges() {
        assert_eq!(
            expand(&toks("1-3 host$ A 192.0.2.$")).unwrap(),
            [
                "host1 A 192.0.2.1",
                "host2 A 192.0.2.2",
                "host3 A 192.0.2.3"
            ]
        );
        assert_eq!(
            expand(&toks("0-4/2 h$ 60 IN CNAME t$")).unwrap(),
            [
                "h0 60 IN CNAME t0",
                "h2 60 IN CNAME t2",
                "h4 60 IN CNAME t4"
            ]
        );
    }

    #[test]
    fn modifiers() {
        assert_eq!(substitute("${0,3,d}", 7).unwrap(), "007");
        assert_eq!(substitute("${10,0,x}", 5).unwrap(), "f");
        assert_eq!(substitute("${0,4,X}", 255).unwrap(), "00FF");
        assert_eq!(substitute("${0,0,o}", 8).unwrap(), "10");
        assert_eq!(substitute("${-1}", 5).unwrap(), "4");
        assert_eq!(substitute("a\\$b$", 2).unwrap(), "a$b2");
        assert_eq!(substitute("${0,0,n}", 0x1a).unwrap(), "a.1");
        assert_eq!(substitute("${0,7,n}", 0x1a).unwrap(), "a.1.0.0");
        assert!(substitute("${0,0,q}", 1).is_err());
        assert!(substitute("${1", 1).is_err());
    }

    #[test]
    fn bad_ranges() {
        assert!(expand(&toks("3-1 h$ A 192.0.2.$")).is_err());
        assert!(expand(&toks("0-100000000 h$ A 192.0.2.$")).is_err());
        assert!(expand(&toks("1-2 h$ 192.0.2.$")).is_err());
    }
}
