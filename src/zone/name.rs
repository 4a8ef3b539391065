//! Domain names as lookup keys: lowercase, uncompressed wire format.
//!
//! The hot path never builds a `hickory_proto::rr::Name` for a query. It lowercases the
//! question name straight from the packet into this form, and every suffix of a wire-format
//! name that starts at a label boundary is itself a valid wire-format name. Walking up
//! towards the zone apex is therefore just slicing, with no allocation.

use hickory_proto::rr::Name;

/// Longest name in wire format (RFC 1035 section 3.1).
pub const MAX_NAME_LEN: usize = 255;

/// Lowercase, uncompressed wire-format bytes of `name` (which must be fully qualified).
pub fn key_of(name: &Name) -> Box<[u8]> {
    let mut out = Vec::with_capacity(wire_len(name));
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out.into_boxed_slice()
}

/// Uncompressed wire-format bytes of `name`, keeping its case.
pub fn wire_of(name: &Name) -> Box<[u8]> {
    let mut out = Vec::with_capacity(wire_len(name));
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out.into_boxed_slice()
}

/// Length of `name` in uncompressed wire format: the exact capacity, so that the boxed
/// slice needs no second allocation (a large zone makes a few of these per name).
fn wire_len(name: &Name) -> usize {
    name.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

/// Lowercases the ASCII letters of `buf` in place, eight bytes per step: the question
/// name of every query goes through this, and byte by byte it was about seven
/// instructions a byte. Only `A`-`Z` change (DNS compares names case-insensitively in
/// ASCII only, RFC 4343 section 3); label length bytes (at most 63) never are letters, so
/// a whole wire name can be lowercased at once.
#[inline]
pub fn ascii_lowercase(buf: &mut [u8]) {
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&lowercase_word(u64::from_le_bytes(word)).to_le_bytes());
    }
    chunks.into_remainder().make_ascii_lowercase();
}

/// Eight bytes lowercased at once (SWAR): for each byte below 0x80, its low seven bits
/// plus 0x3f reach 0x80 from `A` (0x41) on, plus 0x25 from just past `Z` (0x5b) on, and
/// neither sum carries into the next byte; a letter gets 0x20 added.
#[inline]
fn lowercase_word(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = x & LOW7;
    let from_a = low + 0x3f3f_3f3f_3f3f_3f3f;
    let past_z = low + 0x2525_2525_2525_2525;
    let upper = from_a & !past_z & !x & HIGH;
    x | (upper >> 2)
}

/// Offsets at which the labels of a well-formed wire name start, including the
/// terminating root label; `buf` must have room for 128 entries.
pub fn label_starts(wire: &[u8], buf: &mut [u8; 128]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < wire.len() && n < buf.len() {
        buf[n] = i as u8;
        n += 1;
        let len = wire[i] as usize;
        if len == 0 {
            break;
        }
        i += len + 1;
    }
    n
}

/// The name one label up (`www.example.` -> `example.`); `None` at the root.
pub fn parent(wire: &[u8]) -> Option<&[u8]> {
    match wire.first() {
        Some(&len) if len > 0 => wire.get(len as usize + 1..),
        _ => None,
    }
}

/// Whether `name` equals `zone` or lies below it (both lowercase wire names).
pub fn is_within(name: &[u8], zone: &[u8]) -> bool {
    if name.len() < zone.len() || !name.ends_with(zone) {
        return false;
    }
    // The suffix must start on a label boundary of `name`.
    let cut = name.len() - zone.len();
    let mut i = 0;
    while i < cut {
        i += name[i] as usize + 1;
    }
    i == cut
}

/// Converts a lowercase wire key back into a `Name` (for messages and exports).
pub fn name_of(wire: &[u8]) -> Name {
    let mut labels = Vec::new();
    let mut i = 0;
    while i < wire.len() && wire[i] != 0 {
        let len = wire[i] as usize;
        labels.push(&wire[i + 1..i + 1 + len]);
        i += len + 1;
    }
    let mut name = Name::from_labels(labels).unwrap_or_else(|_| Name::root());
    name.set_fqdn(true);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value, at every position of a word, among random neighbours, and
    /// buffers of every length up to 40 (whole words and a remainder).
    #[test]
    fn ascii_lowercase_matches_the_bytewise_one() {
        let mut rng = fastrand::Rng::with_seed(4343);
        for b in 0..=255u8 {
            for pos in 0..8 {
                for _ in 0..8 {
                    let mut word: [u8; 8] = std::array::from_fn(|_| rng.u8(..));
                    word[pos] = b;
                    let mut got = word;
                    ascii_lowercase(&mut got);
                    assert_eq!(got, word.map(|c| c.to_ascii_lowercase()), "{word:02x?}");
                }
            }
        }
        for len in 0..=40 {
            let buf: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let mut got = buf.clone();
            ascii_lowercase(&mut got);
            assert_eq!(got, buf.to_ascii_lowercase());
        }
    }

    #[test]
    fn keys_are_lowercase_wire_and_suffixes_walk_up() {
        let name = Name::from_ascii("WWW.Example.TEST.").unwrap();
        let key = key_of(&name);
        assert_eq!(&*key, b"\x03www\x07example\x04test\x00");
        assert_eq!(&*wire_of(&name), b"\x03WWW\x07Example\x04TEST\x00");
        let up = parent(&key).unwrap();
        assert_eq!(up, b"\x07example\x04test\x00");
        assert_eq!(parent(parent(up).unwrap()).unwrap(), b"\x00");
        assert_eq!(parent(b"\x00"), None);
        assert_eq!(name_of(&key).to_string(), "www.example.test.");
    }

    #[test]
    fn within_respects_label_boundaries() {
        let zone = b"\x04test\x00";
        assert!(is_within(b"\x04test\x00", zone));
        assert!(is_within(b"\x01a\x04test\x00", zone));
        // "xtest." ends with the bytes "test\0" but not at a label boundary.
        assert!(!is_within(b"\x05xtest\x00", zone));
        assert!(!is_within(b"\x01a\x05xtest\x00", zone));
    }
}
