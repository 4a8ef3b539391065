//! DNS transports: the wire format, the UDP workers and the TCP listener.
//!
//! Both transports parse requests with [`wire::parse`] and ask [`crate::answer::answer`];
//! they differ only in how the response is encoded: UDP with Roundel's own encoder
//! ([`wire::encode`]), TCP through hickory-server's message builder. The behaviour tests
//! run against both, which keeps the two encoders honest with each other.

pub mod tcp;
pub mod udp;
pub mod wire;

use std::net::IpAddr;

use crate::answer::{Question, answer};
use crate::zone::Snapshot;
use wire::Parsed;

/// The current zone data, replaced atomically by reloads and read lock-free by every query.
pub type SnapshotCell = arc_swap::ArcSwap<Snapshot>;

/// Computes the UDP response to `msg` into `out`; leaves `out` empty when nothing is to be
/// sent.
pub fn respond_udp(msg: &[u8], src: IpAddr, snapshot: &Snapshot, out: &mut Vec<u8>) {
    match wire::parse(msg) {
        Parsed::Drop => out.clear(),
        Parsed::Reject {
            header,
            rcode,
            question,
            edns,
        } => wire::encode_reject(out, &header, rcode, question, edns.as_ref()),
        Parsed::Query(q) => {
            let question = Question {
                qname: q.qname(),
                qtype: q.qtype,
                client: q.client(src),
            };
            let resp = answer(snapshot, &question);
            wire::encode(out, &q, &resp, q.udp_limit());
        }
    }
}
