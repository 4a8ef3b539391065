//! DNS transports: the wire format, the UDP workers and the TCP listener.
//!
//! Both transports parse requests with [`wire::parse`], ask [`crate::answer::answer_at`]
//! and encode with [`wire::encode`] ([`respond`]); they differ in framing and in the size
//! limit (the client's UDP payload size, or 65,535 bytes over TCP).

pub mod cookie;
pub mod cookie_secret;
pub mod mmsg;
pub mod rrl;
pub mod rrl_config;
pub mod shield;
pub mod stats;
pub mod tcp;
pub mod tcp_conn;
pub mod tcp_conns;
pub mod tcp_worker;
pub mod udp;
pub mod udp_buffers;
pub mod wire;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use crate::answer::{Question, Response, answer_at};
use crate::zone::Snapshot;
use crate::zone::name::MAX_NAME_LEN;
use rrl::{ResponseClass, Verdict};
use shield::Shield;
use stats::{Counts, DnsStats, Transport};
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

/// Largest DNS message over TCP: the two-byte length prefix (RFC 1035 section 4.2.2).
pub const MAX_TCP_MESSAGE: usize = u16::MAX as usize;

/// Computes the response to `msg`, which arrived over `transport` at `received`, into
/// `out`; leaves `out` empty when nothing is to be sent (a response, QR set; too short for
/// a header; dropped by rate limiting). The size limit is the client's UDP payload size, or
/// [`MAX_TCP_MESSAGE`] over TCP. Cookies are answered on both transports through `shield`;
/// rate limiting applies to UDP only (TCP cannot be spoofed, and it is where a limited
/// client is sent to retry). Counts the answer by zone, type and rcode in `stats` (shard
/// `shard`); over TCP the transport and latency are counted here, over UDP the caller
/// counts them once per batch ([`DnsStats::record_batch`]).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn respond(
    msg: &[u8],
    src: IpAddr,
    snapshot: &Snapshot,
    shield: &Shield,
    out: &mut Vec<u8>,
    stats: &DnsStats,
    shard: usize,
    received: Instant,
    transport: Transport,
) {
    let zones = stats.zones_now();
    let counts = Counts::new(stats, &zones, shard);
    let mut name_buf = [0; MAX_NAME_LEN];
    respond_counted(
        msg,
        src,
        snapshot,
        shield,
        out,
        counts,
        &mut name_buf,
        received,
        transport,
    );
}

/// [`respond`] counting into `counts`, whose per-zone table the caller loaded (a UDP
/// worker: once per batch), with the question name parsed into the caller's `name_buf`
/// (reused from query to query, see [`wire::NameBuf`]).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn respond_counted(
    msg: &[u8],
    src: IpAddr,
    snapshot: &Snapshot,
    shield: &Shield,
    out: &mut Vec<u8>,
    counts: Counts<'_>,
    name_buf: &mut wire::NameBuf,
    received: Instant,
    transport: Transport,
) {
    let (stats, shard) = (counts.stats, counts.shard);
    let verdict = |cookie, class, name: &[u8], qtype| match transport {
        Transport::Udp => shield.udp_verdict(src, cookie, class, name, qtype, received),
        Transport::Tcp => Verdict::Send,
    };
    // Matched in place: the query (with its name buffer) is not moved out again.
    let mut parsed = wire::parse(msg, name_buf);
    match parsed {
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
            let verdict = verdict(cookie, ResponseClass::Error, &[], qtype);
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
            counts.answer(None, qtype, rcode, verdict == Verdict::Slip);
            if transport == Transport::Tcp {
                stats.record_batch(shard, transport, 1, received.elapsed());
            }
        }
        Parsed::Query(ref mut q) => {
            let cookie = shield.cookies().process(q.edns.as_mut(), src);
            stats.record_cookie(shard, cookie);
            let question = Question {
                qname: q.qname(),
                qtype: q.qtype,
                client: q.client(src),
            };
            let limit = match transport {
                Transport::Udp => q.udp_limit(),
                Transport::Tcp => MAX_TCP_MESSAGE,
            };
            let mut resp = Response::default();
            answer_at(
                snapshot,
                &question,
                received,
                wire::room(q, limit),
                &mut resp,
            );
            let (class, name) = rrl::classify(question.qname, q.qtype, &resp);
            let truncated = match verdict(cookie, class, name, q.qtype) {
                Verdict::Send => wire::encode(out, q, &resp, limit),
                Verdict::Slip => {
                    wire::encode_slip(out, q);
                    stats.record_rrl(shard, Verdict::Slip);
                    true
                }
                Verdict::Drop => {
                    out.clear();
                    stats.record_rrl(shard, Verdict::Drop);
                    return;
                }
            };
            if query_log() {
                log_query(
                    transport,
                    src,
                    question.qname,
                    q.qtype,
                    resp.rcode,
                    resp.answer_count(),
                );
            }
            let zone = resp.zone.map(|z| z.index);
            counts.answer(
                zone,
                q.qtype,
                resp.rcode,
                truncated && transport == Transport::Udp,
            );
            if transport == Transport::Tcp {
                stats.record_batch(shard, transport, 1, received.elapsed());
            }
        }
    }
}
