//! Key paths for messages about `[names]` (`names.www.A[1]`), written out only when a
//! message needs one: formatting one per name, RRset and record was a tenth of the
//! instructions of loading a large zone, all for messages that a good file never gets.

use std::fmt;

use hickory_proto::rr::RecordType;

use crate::source::toml_key;

/// Where in a `[names.NAME]` table a value is.
#[derive(Clone, Copy, Debug)]
pub(super) enum Part {
    /// The table itself.
    Node,
    /// Its `ttl`.
    Ttl,
    /// An RRset: `A = ...`.
    Set(RecordType),
    /// An RRset's own `ttl` (`A = { ttl = 60, data = ... }`).
    SetTtl(RecordType),
    /// One record of an RRset written as an array.
    Item(RecordType, usize),
}

/// The key path of a value under `[names]`: `names.NAME` (quoted as TOML needs), then
/// the part.
#[derive(Clone, Copy, Debug)]
pub(super) struct NameKey<'a> {
    /// The name as written in the file (the TOML key, unquoted).
    pub(super) name: &'a str,
    /// Which value of the table.
    pub(super) part: Part,
}

impl<'a> NameKey<'a> {
    /// The table of `name`.
    pub(super) fn node(name: &'a str) -> Self {
        NameKey {
            name,
            part: Part::Node,
        }
    }

    /// Another value of the same table.
    pub(super) fn at(self, part: Part) -> Self {
        NameKey { part, ..self }
    }
}

impl fmt::Display for NameKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "names.{}", toml_key(self.name))?;
        match self.part {
            Part::Node => Ok(()),
            Part::Ttl => f.write_str(".ttl"),
            Part::Set(t) => write!(f, ".{t}"),
            Part::SetTtl(t) => write!(f, ".{t}.ttl"),
            Part::Item(t, i) => write!(f, ".{t}[{i}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_as_the_file_writes_them() {
        let www = NameKey::node("www");
        assert_eq!(www.to_string(), "names.www");
        assert_eq!(www.at(Part::Ttl).to_string(), "names.www.ttl");
        assert_eq!(www.at(Part::Set(RecordType::A)).to_string(), "names.www.A");
        assert_eq!(
            www.at(Part::SetTtl(RecordType::TXT)).to_string(),
            "names.www.TXT.ttl"
        );
        assert_eq!(
            NameKey::node("ns.sub")
                .at(Part::Item(RecordType::NS, 1))
                .to_string(),
            "names.\"ns.sub\".NS[1]"
        );
    }
}
