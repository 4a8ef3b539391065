//! Records of a zone on the wire: the one record encoder of the server.
//!
//! Every response Roundel sends starts with the 12-byte header and the question as
//! received, so the question name always sits at offset 12. Owner names and the names
//! inside NS, CNAME, PTR, MX and SOA data are compressed against it (RFC 1035 section
//! 4.1.4; RFC 3597 section 4 allows compression only for those types): a pointer to the
//! longest suffix they share with the question name, nothing else. The transports use this
//! per query ([`crate::dns::wire`]); [`super::prepared`] uses it once per zone load, so
//! that both produce the same bytes.

use hickory_proto::rr::RecordType;

use super::model::Rdata;

/// Length of the DNS message header (RFC 1035 section 4.1.1): the question name follows.
pub const HEADER_LEN: usize = 12;
/// Class IN (RFC 1035 section 3.2.4).
pub const CLASS_IN: u16 = 1;

/// Writes names, compressing them against the question name where a suffix matches.
#[derive(Debug, Clone, Copy)]
pub struct NameWriter<'q> {
    /// The question name, lowercase wire, which sits at offset 12 of every response.
    pub qname: &'q [u8],
}

impl NameWriter<'_> {
    /// Appends `name` (uncompressed wire, any case) to `out`, its longest suffix shared with
    /// the question name replaced by a pointer; returns the offset in `out` of the pointer,
    /// if one was written.
    #[inline]
    pub fn write(&self, out: &mut Vec<u8>, name: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < name.len() {
            let len = name[i] as usize;
            if len == 0 {
                break;
            }
            let suffix = &name[i..];
            if suffix.len() <= self.qname.len() {
                let j = self.qname.len() - suffix.len();
                if is_label_start(self.qname, j) && self.qname[j..].eq_ignore_ascii_case(suffix) {
                    out.extend_from_slice(&name[..i]);
                    let at = out.len();
                    let ptr = 0xC000 | (HEADER_LEN + j) as u16;
                    out.extend_from_slice(&ptr.to_be_bytes());
                    return Some(at);
                }
            }
            i += len + 1;
        }
        out.extend_from_slice(name);
        None
    }
}

fn is_label_start(name: &[u8], at: usize) -> bool {
    let mut i = 0;
    while i < at {
        i += name[i] as usize + 1;
    }
    i == at
}

/// Length of the uncompressed wire name at the start of `wire`.
pub fn name_len(wire: &[u8]) -> usize {
    let mut i = 0;
    while i < wire.len() && wire[i] != 0 {
        i += wire[i] as usize + 1;
    }
    i + 1
}

/// Appends one resource record: owner `owner` (uncompressed wire; `None` for the question
/// name itself, a pointer to offset 12), then type, class IN, `ttl` and `rdata` with its
/// compressible names compressed. `pointer` is told the offset in `out` of every
/// compression pointer written (they all point into the question).
#[inline]
pub fn write_record(
    out: &mut Vec<u8>,
    names: &NameWriter,
    owner: Option<&[u8]>,
    rtype: RecordType,
    ttl: u32,
    rdata: &Rdata,
    mut pointer: impl FnMut(usize),
) {
    match owner {
        None => {
            pointer(out.len());
            out.extend_from_slice(&(0xC000u16 | HEADER_LEN as u16).to_be_bytes());
        }
        Some(wire) => {
            if let Some(at) = names.write(out, wire) {
                pointer(at);
            }
        }
    }
    // Type, class, TTL and RDLENGTH in one copy; most data has no name to compress, so
    // its length is known up front (hot path: one bounds check per part, not per field).
    let wire = &rdata.wire;
    let mut fixed = [0u8; 10];
    fixed[0..2].copy_from_slice(&u16::from(rtype).to_be_bytes());
    fixed[2..4].copy_from_slice(&CLASS_IN.to_be_bytes());
    fixed[4..8].copy_from_slice(&ttl.to_be_bytes());
    if rdata.compressible_names().is_empty() {
        fixed[8..10].copy_from_slice(&(wire.len() as u16).to_be_bytes());
        out.extend_from_slice(&fixed);
        out.extend_from_slice(wire);
        return;
    }
    out.extend_from_slice(&fixed);
    let len_at = out.len() - 2;
    let mut copied = 0;
    for &at in rdata.compressible_names() {
        let at = at as usize;
        out.extend_from_slice(&wire[copied..at]);
        let len = name_len(&wire[at..]);
        if let Some(p) = names.write(out, &wire[at..at + len]) {
            pointer(p);
        }
        copied = at + len;
    }
    out.extend_from_slice(&wire[copied..]);
    let rdlen = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compress_against_the_question() {
        let names = NameWriter {
            qname: b"\x03www\x07example\x00",
        };
        let mut out = Vec::new();
        assert_eq!(names.write(&mut out, b"\x03ns1\x07EXAMPLE\x00"), Some(4));
        assert_eq!(out, b"\x03ns1\xc0\x10");
        out.clear();
        assert_eq!(names.write(&mut out, b"\x03www\x07example\x00"), Some(0));
        assert_eq!(out, b"\xc0\x0c");
        out.clear();
        assert_eq!(names.write(&mut out, b"\x03ns1\x05other\x00"), None);
        assert_eq!(out, b"\x03ns1\x05other\x00");
    }
}
