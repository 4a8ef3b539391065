//! DNS transports: the wire format, the UDP workers and the TCP listener.
//!
//! Both transports parse requests with [`wire::parse`] and ask [`crate::answer::answer`];
//! they differ only in how the response is encoded: UDP with Roundel's own encoder
//! ([`wire::encode`]), TCP through hickory-server's message builder. The behaviour tests
//! run against both, which keeps the two encoders honest with each other.

pub mod mmsg;
pub mod stats;
pub mod tcp;
pub mod udp;
pub mod wire;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use crate::answer::{Question, answer_at};
use crate::zone::Snapshot;
use stats::{DnsStats, Transport};
use wire::Parsed;

/// The current zone data, replaced atomically by reloads and read lock-free by every query.
pub type SnapshotCell = arc_swap::ArcSwap<Snapshot>;

/// Per-query logging (`--query-log`, `[log] queries`, the admin API): off by default. The
/// answer paths test it with one relaxed load, so it costs nothing while off. Process-wide.
static QUERY_LOG: AtomicBool = AtomicBool::new(false);

/// Turns per-query logging on or off.
pub fn set_query_log(on: bool) {
    QUERY_LOG.store(on, Relaxed);
}

/// Whether per-query logging is on.
#[inline]
pub fn query_log() -> bool {
    QUERY_LOG.load(Relaxed)
}

/// Logs one query at INFO (target `roundel::query`). Kept out of line: only called when
/// [`query_log`] is on.
#[cold]
#[inline(never)]
pub fn log_query(
    transport: Transport,
    client: IpAddr,
    qname: &[u8],
    qtype: hickory_proto::rr::RecordType,
    rcode: hickory_proto::op::ResponseCode,
    answers: usize,
) {
    let name = crate::zone::name::name_of(qname);
    tracing::info!(
        target: "roundel::query",
        transport = %match transport { Transport::Udp => "udp", Transport::Tcp => "tcp" },
        %client,
        qname = %name,
        qtype = %qtype,
        rcode = %wire::rcode_name(rcode),
        answers,
        "query"
    );
}

/// Computes the UDP response to `msg`, which arrived at `received`, into `out`; leaves
/// `out` empty when nothing is to be sent. Counts it by zone, type and rcode in `stats`
/// (shard `shard`); the caller counts the transport and latency once per batch
/// ([`DnsStats::record_batch`]).
pub fn respond_udp(
    msg: &[u8],
    src: IpAddr,
    snapshot: &Snapshot,
    out: &mut Vec<u8>,
    stats: &DnsStats,
    shard: usize,
    received: Instant,
) {
    match wire::parse(msg) {
        Parsed::Drop => {
            out.clear();
            stats.record_drop(shard);
        }
        Parsed::Reject {
            header,
            rcode,
            question,
            edns,
        } => {
            wire::encode_reject(out, &header, rcode, question, edns.as_ref());
            let qtype = question.map_or(
                hickory_proto::rr::RecordType::Unknown(0),
                wire::question_type,
            );
            stats.record_answer(shard, None, qtype, rcode, false);
        }
        Parsed::Query(q) => {
            let question = Question {
                qname: q.qname(),
                qtype: q.qtype,
                client: q.client(src),
            };
            let mut resp = crate::answer::Response::default();
            answer_at(snapshot, &question, received, &mut resp);
            let truncated = wire::encode(out, &q, &resp, q.udp_limit());
            if query_log() {
                log_query(
                    Transport::Udp,
                    src,
                    question.qname,
                    q.qtype,
                    resp.rcode,
                    resp.answer.len(),
                );
            }
            let zone = resp.zone.map(|z| &*z.stats);
            stats.record_answer(shard, zone, q.qtype, resp.rcode, truncated);
        }
    }
}
