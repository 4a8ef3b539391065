//! DNS transports: the wire format, the UDP workers and the TCP listener.
//!
//! Both transports parse requests with [`wire::parse`] and ask [`crate::answer::answer`];
//! they differ only in how the response is encoded: UDP with Roundel's own encoder
//! ([`wire::encode`]), TCP through hickory-server's message builder. The behaviour tests
//! run against both, which keeps the two encoders honest with each other.

pub mod cookie;
pub mod cookie_secret;
pub mod rrl;
pub mod rrl_config;
pub mod shield;
pub mod stats;
pub mod tcp;
pub mod udp;
pub mod wire;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use crate::answer::{Question, answer};
use crate::zone::Snapshot;
use rrl::{ResponseClass, Verdict};
use shield::Shield;
use stats::{DnsStats, Transport};
use wire::Parsed;

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
/// `out` empty when nothing is to be sent. Answers cookies and applies rate limiting
/// through `shield`. Counts it in `stats` (shard `shard`).
#[allow(clippy::too_many_arguments)]
pub fn respond_udp(
    msg: &[u8],
    src: IpAddr,
    snapshot: &Snapshot,
    shield: &Shield,
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
            mut edns,
        } => {
            let cookie = shield.cookies().process(edns.as_mut(), src);
            stats.record_cookie(shard, cookie);
            let qtype = question.map_or(
                hickory_proto::rr::RecordType::Unknown(0),
                wire::question_type,
            );
            let verdict =
                shield.udp_verdict(src, cookie, ResponseClass::Error, &[], qtype, received);
            if verdict == Verdict::Drop {
                out.clear();
                stats.record_rrl(shard, verdict);
                return;
            }
            wire::encode_reject(out, &header, rcode, question, edns.as_ref());
            if verdict == Verdict::Slip {
                wire::set_truncated(out);
                stats.record_rrl(shard, verdict);
            }
            stats.record(
                shard,
                None,
                qtype,
                rcode,
                Transport::Udp,
                verdict == Verdict::Slip,
                received.elapsed(),
            );
        }
        Parsed::Query(mut q) => {
            let cookie = shield.cookies().process(q.edns.as_mut(), src);
            stats.record_cookie(shard, cookie);
            let question = Question {
                qname: q.qname(),
                qtype: q.qtype,
                client: q.client(src),
            };
            let resp = answer(snapshot, &question);
            let (class, name) = rrl::classify(question.qname, q.qtype, &resp);
            let verdict = shield.udp_verdict(src, cookie, class, name, q.qtype, received);
            let truncated = match verdict {
                Verdict::Send => wire::encode(out, &q, &resp, q.udp_limit()),
                Verdict::Slip => {
                    wire::encode_slip(out, &q);
                    stats.record_rrl(shard, verdict);
                    true
                }
                Verdict::Drop => {
                    out.clear();
                    stats.record_rrl(shard, verdict);
                    return;
                }
            };
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
            let zone = resp.zone.map(|z| z.index);
            stats.record(
                shard,
                zone,
                q.qtype,
                resp.rcode,
                Transport::Udp,
                truncated,
                received.elapsed(),
            );
        }
    }
}
