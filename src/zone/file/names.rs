//! Names in zone files: owner keys and names in record data, relative to the origin, with
//! a syntax check stricter than the wire format to catch typos.

use std::fmt;

use hickory_proto::rr::Name;
use toml::Spanned;

use super::build::{Builder, Owner};
use super::key_path::NameKey;
use crate::zone::name::{MAX_NAME_LEN, wire_of};

impl Builder<'_, '_> {
    /// Resolves an owner-name key of `[names]`.
    pub(super) fn owner(&mut self, key: &Spanned<String>, key_text: NameKey<'_>) -> Option<Owner> {
        let at = key.span().start;
        let text = key.get_ref().trim();
        // Nearly every owner is a plain relative name: its wire form is its labels and the
        // origin's, with no parsed `Name` in between (three quarters of the builder's work
        // per name went there). Anything else takes the general path and its messages.
        let wire = match plain_owner_wire(text, &self.origin_wire) {
            Some(wire) => wire,
            None => {
                let name = self.name(text, at, key_text, true)?;
                if !self.origin.zone_of(&name) {
                    self.map.report(
                        at,
                        key_text.to_string(),
                        format!("{name} is outside the zone origin {}", self.origin),
                    );
                    return None;
                }
                wire_of(&name).into_vec()
            }
        };
        let key = wire.to_ascii_lowercase().into_boxed_slice();
        Some(Owner {
            key,
            wire: wire.into_boxed_slice(),
            at,
            ttl: None,
        })
    }

    /// Parses a name relative to the origin ("@" is the origin; a trailing dot makes it absolute).
    pub(super) fn name(
        &mut self,
        text: &str,
        at: usize,
        key: impl fmt::Display,
        owner: bool,
    ) -> Option<Name> {
        if text == "@" {
            return Some(self.origin.clone());
        }
        let name = match parse_name(text) {
            Ok(n) => n,
            Err(why) => {
                self.map.report(at, key.to_string(), why);
                return None;
            }
        };
        if !owner && name.is_wildcard() {
            self.map.report(
                at,
                key.to_string(),
                format!("{text:?}: a wildcard can only be an owner name"),
            );
            return None;
        }
        let full = if name.is_fqdn() {
            Ok(name)
        } else {
            name.append_domain(&self.origin)
        };
        match full {
            Ok(mut n) => {
                n.set_fqdn(true);
                Some(n)
            }
            Err(e) => {
                self.map
                    .report(at, key.to_string(), format!("invalid name {text:?}: {e}"));
                None
            }
        }
    }

    pub(super) fn rdata_name(
        &mut self,
        text: &str,
        at: usize,
        key: impl fmt::Display,
    ) -> Option<Name> {
        self.name(text.trim(), at, key, false)
    }
}

/// The wire form (case kept) of the owner name `text` written relative to the origin,
/// whose wire form is `origin_wire`, when every label is one that both [`check_name`] and
/// hickory's parser take as it is (letters, digits, `-` but not first, `_`; or `*` as the
/// whole first label) and the name fits in 255 bytes; `None` otherwise, and for `@` and
/// absolute names (the caller then parses it in full, with its messages). The same bytes
/// as `Name::from_ascii(text)` appended to the origin give.
pub(super) fn plain_owner_wire(text: &str, origin_wire: &[u8]) -> Option<Vec<u8>> {
    if text.ends_with('.') {
        return None;
    }
    plain_wire(text, origin_wire, true)
}

/// The wire form (case kept) of a name in record data (an NS, CNAME, PTR, MX or SRV
/// target), relative to the origin or absolute, under the rules of [`plain_owner_wire`]
/// but with no wildcard label (the general path says why).
pub(super) fn plain_data_wire(text: &str, origin_wire: &[u8]) -> Option<Vec<u8>> {
    match text.strip_suffix('.') {
        Some(body) => plain_wire(body, b"\0", false),
        None => plain_wire(text, origin_wire, false),
    }
}

/// `text`'s labels in wire form followed by `tail` (a name's wire form), when every
/// label is plain and the whole fits in 255 bytes.
fn plain_wire(text: &str, tail: &[u8], wildcard: bool) -> Option<Vec<u8>> {
    let len = text.len() + 1 + tail.len();
    if text.is_empty() || len > MAX_NAME_LEN {
        return None;
    }
    let mut wire = Vec::with_capacity(len);
    for (i, label) in text.split('.').enumerate() {
        let bytes = label.as_bytes();
        let plain = match bytes {
            [] => false,
            b"*" => wildcard && i == 0,
            [first, rest @ ..] => {
                bytes.len() <= 63
                    && (first.is_ascii_alphanumeric() || *first == b'_')
                    && rest
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            }
        };
        if !plain {
            return None;
        }
        wire.push(bytes.len() as u8);
        wire.extend_from_slice(bytes);
    }
    wire.extend_from_slice(tail);
    Some(wire)
}

/// Checks `text` ([`check_name`]) and parses it, relative unless it ends with a dot.
/// Once checked, a label holds no escapes and is its bytes, so the name is built label by
/// label: hickory's `Name::from_ascii` would also refuse `/`, which RFC 2317 classless
/// reverse delegation puts in zone names and CNAME targets (`128/25`, written so in master
/// files too).
pub(super) fn parse_name(text: &str) -> Result<Name, String> {
    check_name(text)?;
    let body = text.strip_suffix('.').unwrap_or(text);
    let mut name = if body.is_empty() {
        Name::root()
    } else {
        Name::from_labels(body.split('.').map(str::as_bytes))
            .map_err(|e| format!("invalid name {text:?}: {e}"))?
    };
    name.set_fqdn(text.ends_with('.'));
    Ok(name)
}

/// Host-name-like syntax check, stricter than the wire format allows, to catch typos:
/// letters, digits, `-` (not first in a label), `_`, `/` (RFC 2317 reverse zones) and `*`
/// as a whole first label.
fn check_name(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty name".into());
    }
    if text == "." {
        return Ok(());
    }
    let body = text.strip_suffix('.').unwrap_or(text);
    for (i, label) in body.split('.').enumerate() {
        if label.is_empty() {
            return Err(format!(
                "{text:?} has an empty label (two dots in a row, or a leading dot)"
            ));
        }
        if label.len() > 63 {
            return Err(format!(
                "{text:?}: the label {label:?} is longer than 63 bytes"
            ));
        }
        if label == "*" {
            if i > 0 {
                return Err(format!(
                    "{text:?}: '*' is only allowed as the whole first label"
                ));
            }
            continue;
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/')))
        {
            return Err(format!("{text:?}: invalid character {c:?} in a name"));
        }
        if label.starts_with('-') {
            return Err(format!("{text:?}: the label {label:?} starts with '-'"));
        }
    }
    if body.len() + 2 > crate::zone::name::MAX_NAME_LEN {
        return Err(format!("{text:?} is longer than 255 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the general path gives: hickory's parse, appended to the origin when relative.
    fn parsed(text: &str, origin: &Name) -> Option<Name> {
        let n = Name::from_ascii(text).ok()?;
        let mut n = if text.ends_with('.') {
            n
        } else {
            n.append_domain(origin).ok()?
        };
        n.set_fqdn(true);
        Some(n)
    }

    #[test]
    fn plain_target_names_encode_as_the_full_parse_does() {
        use crate::zone::model::Rdata;
        use hickory_proto::rr::RData;
        use hickory_proto::rr::rdata::{CNAME, MX, NS, PTR, SRV};
        let origin = Name::from_ascii("Example.TEST.").unwrap();
        let origin_wire = wire_of(&origin);
        for text in ["www", "Mail.Example.NET.", "a-b._tcp", "x.", "n0.h00"] {
            let wire = plain_data_wire(text, &origin_wire).expect("plain");
            let n = parsed(text, &origin).expect("parses");
            let pairs = [
                (
                    Rdata::with_name(&[], &wire, true),
                    RData::CNAME(CNAME(n.clone())),
                ),
                (Rdata::with_name(&[], &wire, true), RData::NS(NS(n.clone()))),
                (
                    Rdata::with_name(&[], &wire, true),
                    RData::PTR(PTR(n.clone())),
                ),
                (
                    Rdata::with_name(&10u16.to_be_bytes(), &wire, true),
                    RData::MX(MX::new(10, n.clone())),
                ),
                (
                    Rdata::with_name(&[0, 1, 0, 2, 0x13, 0xc4], &wire, false),
                    RData::SRV(SRV::new(1, 2, 5060, n.clone())),
                ),
            ];
            for (fast, data) in pairs {
                assert_eq!(Ok(fast), Rdata::try_new(data), "{text}");
            }
        }
        // A wildcard, the apex, the root and what hickory refuses take the general path.
        for text in ["*", "*.a", "@", ".", "-a", "a/b", "a..b", ""] {
            assert_eq!(plain_data_wire(text, &origin_wire), None, "{text:?}");
        }
    }

    #[test]
    fn plain_owner_names_are_the_bytes_the_full_parse_gives() {
        let long_label = "a".repeat(63);
        let near_limit = [long_label.as_str(); 3].join(".");
        let over_limit = [long_label.as_str(); 4].join(".");
        for origin in ["example.test.", "Big.TEST.", "a.b.c.d.example."] {
            let origin_name = Name::from_ascii(origin).unwrap();
            let origin_wire = wire_of(&origin_name);
            for text in [
                "www",
                "WwW",
                "n0.h00",
                "*",
                "*.wild",
                "_sip._tcp",
                "a-b.c_d",
                "a-.9-.a--b.x_",
                near_limit.as_str(),
            ] {
                let fast = plain_owner_wire(text, &origin_wire);
                let full = parsed(text, &origin_name).map(|n| wire_of(&n).into_vec());
                match (&fast, &full) {
                    (Some(f), Some(p)) => assert_eq!(f, p, "{text} in {origin}"),
                    // Too long with this origin: the general path reports it.
                    (None, None) => {}
                    _ => panic!("{text} in {origin}: fast {fast:?}, full {full:?}"),
                }
            }
            // Everything else goes the general way, for its messages.
            for text in [
                "@",
                "www.example.test.",
                ".",
                "a..b",
                "bad name",
                "a.*",
                "é",
                "-a",
                "b.-a",
                "0/25.2.0.192",
                "a.",
                "",
                over_limit.as_str(),
            ] {
                assert_eq!(plain_owner_wire(text, &origin_wire), None, "{text:?}");
            }
        }
    }

    /// RFC 2317 names: `/` passes the check and is kept as a byte of its label, relative
    /// or absolute; other names parse as hickory's parser reads them.
    #[test]
    fn names_with_a_slash_parse_label_by_label() {
        let n = parse_name("130.128/25").unwrap();
        assert!(!n.is_fqdn());
        let labels: Vec<&[u8]> = n.iter().collect();
        assert_eq!(labels, [&b"130"[..], b"128/25"]);
        let origin = parse_name("128/25.2.0.192.in-addr.arpa.").unwrap();
        assert!(origin.is_fqdn());
        assert_eq!(origin.num_labels(), 6);
        assert_eq!(
            wire_of(&origin)[..7],
            [6, b'1', b'2', b'8', b'/', b'2', b'5']
        );
        assert_eq!(
            parse_name("www.x.").unwrap(),
            Name::from_ascii("www.x.").unwrap()
        );
        assert!(check_name("128/25").is_ok());
        assert!(check_name("128\\/25").is_err());
    }
}
