//! The cookie secret file (`[cookies] secret_file`): the server secrets shared by every
//! server of an NS or anycast set, so that each verifies the others' cookies.
//!
//! One secret per line, 32 hexadecimal digits (128 bits); blank lines and lines starting
//! with `#` are ignored. The first secret makes server cookies; the others (at most
//! [`MAX_SECRETS`] in all) are still accepted. That gives RFC 9018 section 5's three
//! rollover stages, each followed by a reload (SIGHUP) of every server:
//!
//! 1. add the new secret as the second line (every server learns it);
//! 2. swap the lines (servers make cookies with the new one, accept both);
//! 3. after at least an hour (the cookie lifetime) plus the longest TTL, drop the old one.
//!
//! Make one with `head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'`.

use std::path::{Path, PathBuf};

use super::cookie::{MAX_SECRETS, SECRET_LEN, Secret, Secrets};

/// Why a secret file cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretFileError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A line is not a secret.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No secret, or too many.
    #[error("{path}: {reason}")]
    Count {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Parses the text of a secret file (`path` only names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Secrets, SecretFileError> {
    let mut keys: Vec<Secret> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| SecretFileError::Line {
            path: path.to_owned(),
            line: i + 1,
            reason,
        };
        if line.len() != 2 * SECRET_LEN {
            return Err(bad(format!(
                "a secret is {} hexadecimal digits ({} bits), this line has {} characters",
                2 * SECRET_LEN,
                8 * SECRET_LEN,
                line.len()
            )));
        }
        let mut key = [0u8; SECRET_LEN];
        for (k, pair) in key.iter_mut().zip(line.as_bytes().chunks(2)) {
            let digits = std::str::from_utf8(pair).ok();
            *k = digits
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| bad("not hexadecimal".to_owned()))?;
        }
        if key == [0; SECRET_LEN] {
            return Err(bad("an all-zero secret is not a secret".to_owned()));
        }
        keys.push(key);
    }
    if keys.len() > MAX_SECRETS {
        return Err(SecretFileError::Count {
            path: path.to_owned(),
            reason: format!(
                "{} secrets; at most {MAX_SECRETS} (the current one, then those still accepted)",
                keys.len()
            ),
        });
    }
    Secrets::new(&keys).ok_or_else(|| SecretFileError::Count {
        path: path.to_owned(),
        reason: "no secret (one line of 32 hexadecimal digits)".to_owned(),
    })
}

/// Reads a secret file.
pub fn read(path: &Path) -> Result<Secrets, SecretFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| SecretFileError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_current_and_previous_and_names_bad_lines() {
        let p = Path::new("cookie.secret");
        let s = parse(
            p,
            "# rollover\n445536bcd2513298075a5d379663c962\n\n DD3BDF9344B678B185A6F5CB60FCA715 \n",
        )
        .unwrap();
        assert_eq!(s.all().len(), 2);
        assert_eq!(s.current()[0], 0x44);
        assert_eq!(s.all()[1][0], 0xdd);

        let e = parse(p, "# c\n445536bcd2513298075a5d379663c9\n").unwrap_err();
        assert!(matches!(e, SecretFileError::Line { line: 2, .. }), "{e}");
        assert!(
            e.to_string().starts_with("cookie.secret:2: a secret is 32"),
            "{e}"
        );
        let e = parse(p, "445536bcd2513298075a5d379663c9zz\n").unwrap_err();
        assert!(e.to_string().contains("not hexadecimal"), "{e}");
        let e = parse(p, "# nothing\n").unwrap_err();
        assert!(e.to_string().contains("no secret"), "{e}");
        let e = parse(p, &"445536bcd2513298075a5d379663c962\n".repeat(4)).unwrap_err();
        assert!(e.to_string().contains("at most 3"), "{e}");
        let e = parse(p, &"0".repeat(32)).unwrap_err();
        assert!(e.to_string().contains("all-zero"), "{e}");
    }
}
