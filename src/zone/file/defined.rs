//! Where each name of `[names]` was defined, kept for the checks that need every name
//! first (delegations), in two buffers rather than two allocations per name.
//!
//! The list lives while the model is built, so its entries would lie between the model's
//! blocks; freed afterwards, they would leave holes in every page of the model that the
//! allocator cannot give back (a large zone kept a third more resident memory for it).
//!
//! Looking a name up ([`DefinedNames::first_of`], for the message about a name defined
//! twice) builds a hash index the first time: a good file never pays for it, and a file
//! with many names defined twice pays once, not a scan of every name per duplicate (20,000
//! duplicates of the last names of 200,000 took 27 s that way).

use std::collections::HashMap;

/// Owner keys (lowercase wire), byte offsets and names as written (the `[names]` keys),
/// in `[names]` order.
#[derive(Debug, Default)]
pub(super) struct DefinedNames {
    keys: Vec<u8>,
    texts: String,
    /// End of the key in `keys`, end of the key path in `texts`, byte offset in the file.
    entries: Vec<(usize, usize, usize)>,
    /// Entry number of each key, for the entries before `indexed`; built on the first
    /// lookup.
    index: HashMap<Box<[u8]>, usize>,
    indexed: usize,
}

impl DefinedNames {
    /// Room for `n` names.
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            keys: Vec::with_capacity(n * 16),
            texts: String::with_capacity(n * 16),
            entries: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    /// Adds the name `key` defined at byte `at`, written `written` in the file.
    pub(super) fn push(&mut self, key: &[u8], at: usize, written: &str) {
        self.keys.extend_from_slice(key);
        self.texts.push_str(written);
        self.entries.push((self.keys.len(), self.texts.len(), at));
    }

    /// Every name: key, byte offset, name as written.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], usize, &str)> {
        (0..self.entries.len()).map(|j| self.entry(j))
    }

    /// Entry `j`: key, byte offset, name as written.
    fn entry(&self, j: usize) -> (&[u8], usize, &str) {
        let (k0, t0) = j
            .checked_sub(1)
            .map_or((0, 0), |p| (self.entries[p].0, self.entries[p].1));
        let (k1, t1, at) = self.entries[j];
        (&self.keys[k0..k1], at, &self.texts[t0..t1])
    }

    /// Where `key` was defined first, and how it was written there, if it was.
    pub(super) fn first_of(&mut self, key: &[u8]) -> Option<(usize, &str)> {
        for j in self.indexed..self.entries.len() {
            let k: Box<[u8]> = self.entry(j).0.into();
            self.index.entry(k).or_insert(j);
        }
        self.indexed = self.entries.len();
        let j = *self.index.get(key)?;
        let (_, at, written) = self.entry(j);
        Some((at, written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_as_pushed() {
        let mut d = DefinedNames::with_capacity(1);
        d.push(b"\x01a\x00", 3, "a");
        d.push(b"\x02bc\x00", 17, "b.c");
        let all: Vec<_> = d.iter().collect();
        assert_eq!(
            all,
            [(&b"\x01a\x00"[..], 3, "a"), (&b"\x02bc\x00"[..], 17, "b.c")]
        );
        assert_eq!(d.first_of(b"\x02bc\x00"), Some((17, "b.c")));
        assert_eq!(d.first_of(b"\x01x\x00"), None);
        // Names added after a lookup are found by the next one.
        d.push(b"\x01x\x00", 40, "X");
        assert_eq!(d.first_of(b"\x01x\x00"), Some((40, "X")));
        assert_eq!(d.first_of(b"\x01a\x00"), Some((3, "a")));
    }
}
