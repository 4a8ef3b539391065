//! Where each name of `[names]` was defined, kept for the checks that need every name
//! first (delegations), in two buffers rather than an allocation per name.
//!
//! The list lives while the model is built, so its entries would lie between the model's
//! blocks; freed afterwards, they would leave holes in every page of the model that the
//! allocator cannot give back (a large zone kept a third more resident memory for it).
//!
//! Entry `j` is the `j`-th name added to the zone's [`NodeTable`]: the builder adds
//! both together, and only for names it accepts. The keys are the table's, so a name's
//! entry is found through the table's own hash index ([`DefinedNames::first_of`], for the
//! message about a name defined twice) and no key is stored twice.

use crate::zone::model::NodeTable;

/// Byte offsets and names as written (the `[names]` keys), in the order the builder took
/// them, parallel to the first entries of a [`NodeTable`].
#[derive(Debug, Default)]
pub(super) struct DefinedNames {
    texts: String,
    /// End of the name as written in `texts`, byte offset in the file.
    entries: Vec<(usize, usize)>,
}

impl DefinedNames {
    /// Room for `n` names.
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            texts: String::with_capacity(n * 16),
            entries: Vec::with_capacity(n),
        }
    }

    /// Adds the name defined at byte `at`, written `written` in the file: the one just
    /// added to the table.
    pub(super) fn push(&mut self, at: usize, written: &str) {
        self.texts.push_str(written);
        self.entries.push((self.texts.len(), at));
    }

    /// Every name: key (from `nodes`), byte offset, name as written.
    pub(super) fn iter<'s>(
        &'s self,
        nodes: &'s NodeTable,
    ) -> impl Iterator<Item = (&'s [u8], usize, &'s str)> {
        nodes.keys().zip(0..self.entries.len()).map(|(key, j)| {
            let (at, written) = self.entry(j);
            (key, at, written)
        })
    }

    /// Entry `j`: byte offset, name as written.
    fn entry(&self, j: usize) -> (usize, &str) {
        let t0 = j.checked_sub(1).map_or(0, |p| self.entries[p].0);
        let (t1, at) = self.entries[j];
        (at, &self.texts[t0..t1])
    }

    /// Where `key` was defined, and how it was written there, if it was defined under
    /// `[names]`.
    pub(super) fn first_of(&self, nodes: &NodeTable, key: &[u8]) -> Option<(usize, &str)> {
        let j = nodes.index_of(key)?;
        (j < self.entries.len()).then(|| self.entry(j))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::model::Node;

    #[test]
    fn entries_come_back_as_pushed_beside_the_tables_keys() {
        let mut nodes = NodeTable::with_capacity(3);
        let mut d = DefinedNames::with_capacity(1);
        nodes.insert(b"\x01a\x00", b"\x01a\x00", Node::default());
        d.push(3, "a");
        nodes.insert(b"\x02bc\x00", b"\x02bc\x00", Node::default());
        d.push(17, "b.c");
        // Added to the table later, not under `[names]` (a pool, an empty non-terminal).
        nodes.insert(b"\x01p\x00", b"\x01p\x00", Node::default());
        let all: Vec<_> = d.iter(&nodes).collect();
        assert_eq!(
            all,
            [(&b"\x01a\x00"[..], 3, "a"), (&b"\x02bc\x00"[..], 17, "b.c")]
        );
        assert_eq!(d.first_of(&nodes, b"\x02bc\x00"), Some((17, "b.c")));
        assert_eq!(d.first_of(&nodes, b"\x01x\x00"), None);
        assert_eq!(d.first_of(&nodes, b"\x01p\x00"), None);
        assert_eq!(d.first_of(&nodes, b"\x01a\x00"), Some((3, "a")));
    }
}
