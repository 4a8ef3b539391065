//! Durations written as strings in zone files: `"500ms"`, `"1s"`, `"2m"`, `"1m30s"`, `"1.5s"`.
//!
//! A tiny parser rather than a dependency: the grammar is small, and owning it lets the
//! error say exactly what is wrong for the person editing the file.

use std::time::Duration;

/// Parses one or more `<number><unit>` parts (units `ms`, `s`, `m`, `h`; the number may have
/// a decimal part) and sums them. A bare number is rejected: "is 30 seconds or
/// milliseconds?" is exactly the ambiguity a config file should not have.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. \"500ms\", \"1s\" or \"2m\"".into());
    }
    let mut total_nanos: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(format!(
                "bad duration {text:?}: expected a number at {rest:?}"
            ));
        }
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "bad duration {text:?}: missing unit after {num}; use ms, s, m or h"
                ));
            }
            other => {
                return Err(format!(
                    "bad duration {text:?}: unknown unit {other:?}; use ms, s, m or h"
                ));
            }
        };
        let (int_part, frac_part) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
            return Err(format!("bad duration {text:?}: {num:?} is not a number"));
        }
        if int_part.len() > 12 || frac_part.len() > 9 {
            return Err(format!("bad duration {text:?}: {num:?} is too long"));
        }
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part
                .parse()
                .map_err(|_| format!("bad duration {text:?}"))?
        };
        let mut nanos = int * unit_nanos;
        if !frac_part.is_empty() {
            let frac: u128 = frac_part
                .parse()
                .map_err(|_| format!("bad duration {text:?}"))?;
            nanos += frac * unit_nanos / 10u128.pow(frac_part.len() as u32);
        }
        total_nanos += nanos;
        rest = after;
    }
    if total_nanos > u64::MAX as u128 {
        return Err(format!("duration {text:?} is too long"));
    }
    Ok(Duration::from_nanos(total_nanos as u64))
}

/// Formats a duration the way the parser reads it, for messages and logs.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) && ms > 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_fractions_and_sums() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_missing_or_unknown_units_and_garbage() {
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("30").unwrap_err().contains("missing unit"));
        assert!(parse_duration("3d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1..5s").is_err());
        assert!(parse_duration("1 s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999s").is_err());
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
    }
}
