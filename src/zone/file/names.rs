//! Names in zone files: owner keys and names in record data, relative to the origin, with
//! a syntax check stricter than the wire format to catch typos.

use std::fmt;

use hickory_proto::rr::Name;
use toml::Spanned;

use super::build::{Builder, Owner};
use super::key_path::NameKey;
use crate::zone::name::key_of;

impl Builder<'_, '_> {
    /// Resolves an owner-name key of `[names]`.
    pub(super) fn owner(&mut self, key: &Spanned<String>, key_text: NameKey<'_>) -> Option<Owner> {
        let at = key.span().start;
        let text = key.get_ref().trim();
        let name = self.name(text, at, key_text, true)?;
        if !self.origin.zone_of(&name) {
            self.map.report(
                at,
                key_text.to_string(),
                format!("{name} is outside the zone origin {}", self.origin),
            );
            return None;
        }
        Some(Owner {
            key: key_of(&name),
            name,
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
        if let Err(why) = check_name(text) {
            self.map.report(at, key.to_string(), why);
            return None;
        }
        if !owner && text.split('.').next() == Some("*") {
            self.map.report(
                at,
                key.to_string(),
                format!("{text:?}: a wildcard can only be an owner name"),
            );
            return None;
        }
        let parsed = Name::from_ascii(text).and_then(|n| {
            if text.ends_with('.') {
                Ok(n)
            } else {
                n.append_domain(&self.origin)
            }
        });
        match parsed {
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

/// Host-name-like syntax check, stricter than the wire format allows, to catch typos:
/// letters, digits, `-`, `_`, `/` (RFC 2317 reverse zones) and `*` as a whole first label.
pub(super) fn check_name(text: &str) -> Result<(), String> {
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
    }
    if body.len() + 2 > crate::zone::name::MAX_NAME_LEN {
        return Err(format!("{text:?} is longer than 255 bytes"));
    }
    Ok(())
}
