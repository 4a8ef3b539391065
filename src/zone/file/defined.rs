//! Where each name of `[names]` was defined, kept for the checks that need every name
//! first (delegations), in two buffers rather than two allocations per name.
//!
//! The list lives while the model is built, so its entries would lie between the model's
//! blocks; freed afterwards, they would leave holes in every page of the model that the
//! allocator cannot give back (a large zone kept a third more resident memory for it).

/// Owner keys (lowercase wire), byte offsets and names as written (the `[names]` keys),
/// in `[names]` order.
#[derive(Debug, Default)]
pub(super) struct DefinedNames {
    keys: Vec<u8>,
    texts: String,
    /// End of the key in `keys`, end of the key path in `texts`, byte offset in the file.
    entries: Vec<(usize, usize, usize)>,
}

impl DefinedNames {
    /// Room for `n` names.
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            keys: Vec::with_capacity(n * 16),
            texts: String::with_capacity(n * 16),
            entries: Vec::with_capacity(n),
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
        let starts = std::iter::once((0, 0)).chain(self.entries.iter().map(|e| (e.0, e.1)));
        starts
            .zip(self.entries.iter())
            .map(|((k0, t0), &(k1, t1, at))| (&self.keys[k0..k1], at, &self.texts[t0..t1]))
    }

    /// Where `key` was defined, if it was.
    pub(super) fn position_of(&self, key: &[u8]) -> Option<usize> {
        self.iter().find(|(k, _, _)| *k == key).map(|(_, at, _)| at)
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
        assert_eq!(d.position_of(b"\x02bc\x00"), Some(17));
        assert_eq!(d.position_of(b"\x01x\x00"), None);
    }
}
