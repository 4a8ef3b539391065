//! A zone's names: every [`Node`] by the lowercase wire key of its owner name.
//!
//! One table per zone, built once at load and then only read. It is laid out for size,
//! because a large zone is mostly this table (a million names: see
//! `docs/bench/2026-12-02-name-table.md`):
//!
//! - the nodes sit in one vector, in insertion order;
//! - their names sit in one byte arena: the lowercase key, followed, only when the file
//!   wrote the name in another case, by the name as written (case is kept for answers,
//!   RFC 4343 section 4.1);
//! - the hash index holds a 4-byte node number per bucket.
//!
//! A hash map of boxed keys to inline nodes cost about 200 bytes a name in buckets (half
//! of them empty after the last doubling), two small heap blocks and their allocator
//! headers; this costs about 60. A lookup still touches three places (control bytes,
//! node, name bytes), as the map's did (control bytes, bucket, key block).

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use super::model::Node;

/// Every node of one zone, by lowercase wire key. See the module header for the layout.
#[derive(Debug, Default)]
pub struct NodeTable {
    nodes: Vec<Node>,
    /// Node numbers, hashed by their key.
    index: HashTable<u32>,
    /// Keys and, where they differ, names as written (see [`Node`]'s name fields).
    names: Vec<u8>,
}

/// The key of `node` in `names`, a table's name bytes. Apart from [`NodeTable::key`] so
/// that the table's index can hash keys while its nodes are borrowed.
fn key_in<'t>(names: &'t [u8], node: &Node) -> &'t [u8] {
    &names[node.name_at..node.name_at + usize::from(node.name_len)]
}

/// FxHash: the keys are short and come from our own zone files or are bounded by the
/// 255-byte name limit, and lookups are on the hot path.
fn hash(key: &[u8]) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl NodeTable {
    /// A table with room for `n` names without growing.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            nodes: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
            names: Vec::new(),
        }
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the table holds no name.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The place of `key` in insertion order (the order of [`NodeTable::iter`]).
    #[inline]
    pub fn index_of(&self, key: &[u8]) -> Option<usize> {
        self.index_hashed(hash(key), key)
    }

    #[inline]
    fn index_hashed(&self, hash: u64, key: &[u8]) -> Option<usize> {
        self.index
            .find(hash, |&i| self.key(&self.nodes[i as usize]) == key)
            .map(|&i| i as usize)
    }

    /// The node of `key` (a lowercase wire name).
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&Node> {
        self.index_of(key).map(|i| &self.nodes[i])
    }

    /// The node of `key`, to change it while the zone is built.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Node> {
        self.index_of(key).map(|i| &mut self.nodes[i])
    }

    /// Whether `key` has a node.
    #[inline]
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.index_of(key).is_some()
    }

    /// The lowercase wire key of `node`, a node of this table.
    #[inline]
    pub fn key<'t>(&'t self, node: &Node) -> &'t [u8] {
        key_in(&self.names, node)
    }

    /// The owner name of `node`, a node of this table, as the zone file wrote it
    /// (uncompressed wire form, original case).
    #[inline]
    pub fn wire<'t>(&'t self, node: &Node) -> &'t [u8] {
        let len = usize::from(node.name_len);
        let at = node.name_at + if node.cased { len } else { 0 };
        &self.names[at..at + len]
    }

    /// Adds `node` at `key` (lowercase) with `wire` (the name as written: the same bytes
    /// but for ASCII case) and returns it; when `key` is already present, the existing
    /// node is returned and `node` is dropped.
    pub fn insert(&mut self, key: &[u8], wire: &[u8], node: Node) -> &mut Node {
        debug_assert!(wire.eq_ignore_ascii_case(key));
        let h = hash(key);
        if let Some(i) = self.index_hashed(h, key) {
            return &mut self.nodes[i];
        }
        let Ok(number) = u32::try_from(self.nodes.len()) else {
            // Four billion names would hold some 240 GB in this table alone: memory runs
            // out long before. The table stops rather than wrap.
            unreachable!("a zone of over 4 billion names");
        };
        // Names are at most 255 bytes (RFC 1035 section 3.1), so the length fits a byte.
        let Ok(name_len) = u8::try_from(key.len()) else {
            unreachable!("a wire name over 255 bytes");
        };
        let cased = wire != key;
        let name_at = self.names.len();
        self.names.extend_from_slice(key);
        if cased {
            self.names.extend_from_slice(wire);
        }
        self.nodes.push(Node {
            name_at,
            name_len,
            cased,
            ..node
        });
        let (nodes, names) = (&self.nodes, &self.names);
        self.index
            .insert_unique(h, number, |&i| hash(key_in(names, &nodes[i as usize])));
        &mut self.nodes[number as usize]
    }

    /// Every (key, node), in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.nodes.iter().map(|n| (self.key(n), n))
    }

    /// Every (key, node), in insertion order, the nodes to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&[u8], &mut Node)> {
        let names = &self.names;
        self.nodes.iter_mut().map(|n| (key_in(names, n), n))
    }

    /// Every node, in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// Every key, in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.nodes.iter().map(|n| self.key(n))
    }

    /// Gives back what building reserved beyond the final size.
    pub fn shrink_to_fit(&mut self) {
        self.nodes.shrink_to_fit();
        self.names.shrink_to_fit();
        let (nodes, names) = (&self.nodes, &self.names);
        self.index
            .shrink_to_fit(|&i| hash(key_in(names, &nodes[i as usize])));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Node {
        Node::default()
    }

    #[test]
    fn names_keep_their_case_and_lookups_use_the_key() {
        let mut t = NodeTable::with_capacity(2);
        t.insert(b"\x03www\x04test\x00", b"\x03WwW\x04test\x00", node());
        t.insert(b"\x04mail\x04test\x00", b"\x04mail\x04test\x00", node());
        let www = t.get(b"\x03www\x04test\x00").expect("present");
        assert_eq!(t.wire(www), b"\x03WwW\x04test\x00");
        assert_eq!(t.key(www), b"\x03www\x04test\x00");
        let mail = t.get(b"\x04mail\x04test\x00").expect("present");
        assert_eq!(t.wire(mail), b"\x04mail\x04test\x00");
        assert!(!t.contains_key(b"\x03WwW\x04test\x00"));
        assert!(t.get(b"\x03ftp\x04test\x00").is_none());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_second_insert_of_a_key_returns_the_first_node() {
        let mut t = NodeTable::with_capacity(1);
        t.insert(b"\x01a\x00", b"\x01a\x00", node()).cut = true;
        let again = t.insert(b"\x01a\x00", b"\x01A\x00", node());
        assert!(again.cut);
        assert_eq!(t.len(), 1);
        assert_eq!(t.wire(t.get(b"\x01a\x00").expect("present")), b"\x01a\x00");
    }

    #[test]
    fn the_table_grows_past_its_capacity_and_finds_every_name() {
        let mut t = NodeTable::with_capacity(4);
        let keys: Vec<Vec<u8>> = (0..5000)
            .map(|i| {
                let label = format!("n{i}");
                let mut k = vec![label.len() as u8];
                k.extend_from_slice(label.as_bytes());
                k.push(0);
                k
            })
            .collect();
        for k in &keys {
            t.insert(k, k, node());
        }
        t.shrink_to_fit();
        assert_eq!(t.len(), keys.len());
        for k in &keys {
            assert_eq!(t.key(t.get(k).expect("present")), &k[..]);
        }
        assert_eq!(t.keys().count(), keys.len());
    }
}
