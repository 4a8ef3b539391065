//! DNS messages on the wire: a strict, allocation-free request parser and a response
//! encoder that writes pre-encoded record data.
//!
//! This is the hot path. The parser lowercases the question name into a fixed buffer as it
//! validates it; the encoder copies the question bytes as received (so the client's case is
//! echoed, RFC 1035 section 7.3 and RFC 4343), points owner names at the question
//! (compression, RFC 1035 section 4.1.4) and copies each record's pre-encoded data.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::answer::{Client, Encoded, Owner, Response, Rr};
use crate::zone::encode::{CLASS_IN, HEADER_LEN, NameWriter, write_record};
use crate::zone::name::{MAX_NAME_LEN, ascii_lowercase};
use crate::zone::prepared::{POOL_RECORD_A, POOL_RECORD_AAAA, POOL_RECORD_STRIDE, pool_record_len};

/// Largest UDP payload Roundel advertises and sends: the DNS flag day 2020 value, which
/// avoids IP fragmentation on nearly every path.
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// UDP payload limit for a query without EDNS (RFC 1035 section 4.2.1).
pub const CLASSIC_UDP_PAYLOAD: u16 = 512;

const TYPE_OPT: u16 = 41;
const EDNS_CLIENT_SUBNET: u16 = 8;
/// EDNS option code of DNS cookies (RFC 7873 section 4).
const EDNS_COOKIE: u16 = 10;
/// Length of a client cookie (RFC 7873 section 4).
pub const CLIENT_COOKIE_LEN: usize = 8;
/// Longest server cookie (RFC 7873 section 4: 8 to 32 bytes).
pub const MAX_SERVER_COOKIE_LEN: usize = 32;
const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_CD: u16 = 0x0010;
const EDNS_DO: u32 = 0x8000;

/// EDNS(0) data of a request (RFC 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// The requester's UDP payload size.
    pub payload: u16,
    /// EDNS version.
    pub version: u8,
    /// The DO bit (RFC 3225), copied into the response.
    pub dnssec_ok: bool,
    /// EDNS Client Subnet (RFC 7871).
    pub ecs: Option<Ecs>,
    /// DNS cookie (RFC 7873). The encoder echoes it as it stands when the response is
    /// written: the cookie layer ([`super::cookie`]) replaces the server part with a fresh
    /// server cookie, or removes the option when cookies are off.
    pub cookie: Option<Cookie>,
}

/// A COOKIE option: the client cookie and, when present, a server cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    /// The client cookie.
    pub client: [u8; CLIENT_COOKIE_LEN],
    server: [u8; MAX_SERVER_COOKIE_LEN],
    server_len: u8,
}

impl Cookie {
    /// Parses the option data: 8 bytes (client cookie only) or 16 to 40 (client and server
    /// cookie); anything else is malformed (RFC 7873 section 5.2.2: FORMERR).
    pub fn parse(data: &[u8]) -> Option<Cookie> {
        let n = data.len();
        if n != CLIENT_COOKIE_LEN
            && !(CLIENT_COOKIE_LEN + 8..=CLIENT_COOKIE_LEN + MAX_SERVER_COOKIE_LEN).contains(&n)
        {
            return None;
        }
        let mut c = Cookie {
            client: data[..CLIENT_COOKIE_LEN].try_into().ok()?,
            server: [0; MAX_SERVER_COOKIE_LEN],
            server_len: (n - CLIENT_COOKIE_LEN) as u8,
        };
        c.server[..n - CLIENT_COOKIE_LEN].copy_from_slice(&data[CLIENT_COOKIE_LEN..]);
        Some(c)
    }

    /// The server cookie, empty when the client sent none.
    pub fn server(&self) -> &[u8] {
        &self.server[..self.server_len as usize]
    }

    /// Replaces the server cookie (at most [`MAX_SERVER_COOKIE_LEN`] bytes).
    pub fn set_server(&mut self, server: &[u8]) {
        let n = server.len().min(MAX_SERVER_COOKIE_LEN);
        self.server[..n].copy_from_slice(&server[..n]);
        self.server_len = n as u8;
    }

    /// Length of the option data.
    pub fn len(&self) -> usize {
        CLIENT_COOKIE_LEN + self.server_len as usize
    }

    /// Never true: a cookie always holds a client cookie.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// An EDNS Client Subnet option of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ecs {
    /// Address family: 1 IPv4, 2 IPv6.
    pub family: u16,
    /// Source prefix length.
    pub source_prefix: u8,
    /// The address, zero beyond the prefix.
    pub addr: IpAddr,
}

/// The header fields a response copies from its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// Message ID.
    pub id: u16,
    /// Opcode (4 bits).
    pub opcode: u8,
    /// RD and CD, the flags a response echoes.
    pub echoed_flags: u16,
}

/// A well-formed standard query.
#[derive(Debug, Clone)]
pub struct Query<'b> {
    /// Header fields echoed in the response.
    pub header: RequestHeader,
    /// The question section exactly as received (name, type, class).
    pub question: &'b [u8],
    qname: &'b [u8],
    /// Question type.
    pub qtype: RecordType,
    /// EDNS data, if the request had an OPT record.
    pub edns: Option<Edns>,
}

impl Query<'_> {
    /// The question name, lowercase wire format.
    pub fn qname(&self) -> &[u8] {
        self.qname
    }

    /// The largest response that may be sent over UDP (RFC 6891 section 6.2.5: at least
    /// 512, at most what both sides accept).
    pub fn udp_limit(&self) -> usize {
        match self.edns {
            Some(e) => e.payload.clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD) as usize,
            None => CLASSIC_UDP_PAYLOAD as usize,
        }
    }

    /// The client as the answer engine sees it.
    pub fn client(&self, addr: IpAddr) -> Client {
        Client {
            addr,
            subnet: self
                .edns
                .and_then(|e| e.ecs)
                .map(|e| (e.addr, e.source_prefix)),
        }
    }
}

/// What to do with a received message.
// The query variant is large on purpose: the lowercased name lives inline, so parsing
// allocates nothing; a `Parsed` only ever lives on the stack.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed<'b> {
    /// A query to answer.
    Query(Query<'b>),
    /// A request to answer with just this rcode (FORMERR, NOTIMP, REFUSED, BADVERS).
    Reject {
        /// Header fields to echo.
        header: RequestHeader,
        /// Response code.
        rcode: ResponseCode,
        /// The question, when it could be parsed.
        question: Option<&'b [u8]>,
        /// EDNS data, when it could be parsed.
        edns: Option<Edns>,
    },
    /// Not worth an answer: too short to hold a header, or a response (QR set), which must
    /// never be answered (reflection loops).
    Drop,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Room for a question name in lowercase wire form, which [`parse`] writes into. A
/// caller reuses one for every query: a fresh one is 255 bytes to zero, and a name held
/// inside the parsed query was 255 more to move, about a hundred instructions a query.
pub type NameBuf = [u8; MAX_NAME_LEN];

/// Parses a request; the question name goes in lowercase into `name_buf`.
///
/// The whole message is read before anything is rejected, so that a rejection (FORMERR,
/// NOTIMP, REFUSED, BADVERS) still carries an OPT record when the request had one
/// (RFC 6891 section 7).
#[inline]
pub fn parse<'b>(msg: &'b [u8], name_buf: &'b mut NameBuf) -> Parsed<'b> {
    if msg.len() < HEADER_LEN {
        return Parsed::Drop;
    }
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & FLAG_QR != 0 {
        return Parsed::Drop;
    }
    let opcode = ((flags >> 11) & 0xF) as u8;
    let header = RequestHeader {
        id: u16::from_be_bytes([msg[0], msg[1]]),
        opcode,
        // RD and CD are defined for QUERY only; a response to any other opcode has AA, RD,
        // RA, AD and CD clear (RFC 1035 section 4.1.1, RFC 6895 section 2.2).
        echoed_flags: if opcode == 0 {
            flags & (FLAG_RD | FLAG_CD)
        } else {
            0
        },
    };
    let reject = |rcode, question, edns| Parsed::Reject {
        header,
        rcode,
        question,
        edns,
    };
    let formerr = |edns| reject(ResponseCode::FormErr, None, edns);
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    let ancount = u16::from_be_bytes([msg[6], msg[7]]);
    let nscount = u16::from_be_bytes([msg[8], msg[9]]);
    let arcount = u16::from_be_bytes([msg[10], msg[11]]);

    // The first question: no compression possible (nothing precedes it), so labels only.
    let qname = name_buf;
    let mut n = 0usize;
    let mut i = HEADER_LEN;
    let mut first_question = None;
    if qdcount >= 1 {
        loop {
            let Some(&len) = msg.get(i) else {
                return formerr(None);
            };
            if len & 0xC0 != 0 || n + 1 + len as usize > MAX_NAME_LEN {
                return formerr(None);
            }
            n += 1 + len as usize;
            i += 1 + len as usize;
            if len == 0 {
                break;
            }
        }
        // The labels end within the message (the root label was read at i - 1); copied
        // whole and lowercased a word at a time, length bytes included (they are no
        // letters). What the rounding up touches past the name is never read.
        let Some(raw) = msg.get(HEADER_LEN..i) else {
            return formerr(None);
        };
        qname[..n].copy_from_slice(raw);
        ascii_lowercase(&mut qname[..n.next_multiple_of(8).min(MAX_NAME_LEN)]);
        let (Some(qtype), Some(qclass)) = (be16(msg, i), be16(msg, i + 2)) else {
            return formerr(None);
        };
        i += 4;
        first_question = Some((&msg[HEADER_LEN..i], qtype, qclass));
    }
    // Further questions are only skipped: more than one is an error anyway.
    for _ in 1..qdcount {
        match skip_name(msg, i) {
            Some(next) if next + 4 <= msg.len() => i = next + 4,
            _ => return formerr(None),
        }
    }

    // Answer and authority records are skipped; an OPT there is an error (RFC 6891
    // section 6.1.1). Exactly one OPT at most in additional, owned by the root.
    for _ in 0..(ancount as usize + nscount as usize) {
        match skip_record(msg, i) {
            Some((next, rtype, _)) if rtype != TYPE_OPT => i = next,
            _ => return formerr(None),
        }
    }
    let mut edns = None;
    for _ in 0..arcount {
        let Some((next, rtype, owner_is_root)) = skip_record(msg, i) else {
            return formerr(edns);
        };
        if rtype == TYPE_OPT {
            if edns.is_some() || !owner_is_root {
                return formerr(None);
            }
            match parse_opt(msg, next_opt_type(msg, i), next) {
                Some(e) => edns = Some(e),
                None => return formerr(None),
            }
        }
        i = next;
    }

    let Some((question, qtype, qclass)) = first_question.filter(|_| qdcount == 1) else {
        let rcode = if header.opcode != 0 {
            ResponseCode::NotImp
        } else {
            ResponseCode::FormErr
        };
        return reject(rcode, None, edns);
    };
    if header.opcode != 0 {
        return reject(ResponseCode::NotImp, Some(question), edns);
    }
    if let Some(e) = edns
        && e.version > 0
    {
        return reject(ResponseCode::BADVERS, Some(question), edns);
    }
    if qclass != CLASS_IN {
        return reject(ResponseCode::Refused, Some(question), edns);
    }
    let qtype = RecordType::from(qtype);
    if qtype == RecordType::OPT {
        // A meta type that cannot be asked for (RFC 6891 section 6.1.1).
        return reject(ResponseCode::FormErr, Some(question), edns);
    }
    let qname: &'b NameBuf = qname;
    Parsed::Query(Query {
        header,
        question,
        qname: &qname[..n],
        qtype,
        edns,
    })
}

/// Offset of the type field of the record whose owner name starts at `at`.
fn next_opt_type(msg: &[u8], at: usize) -> usize {
    skip_name(msg, at).unwrap_or(at + 1)
}

/// Skips a (possibly compressed) name starting at `at`; returns the offset after it.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    let start = at;
    loop {
        let len = *msg.get(at)?;
        match len & 0xC0 {
            0x00 => {
                at += 1 + len as usize;
                if len == 0 {
                    return Some(at);
                }
            }
            0xC0 => return Some(at + 2).filter(|&e| e <= msg.len()),
            _ => return None,
        }
        if at - start > MAX_NAME_LEN {
            return None;
        }
    }
}

/// Skips one resource record starting at `at`: returns the offset after it, its type and
/// whether its owner is the root name.
fn skip_record(msg: &[u8], at: usize) -> Option<(usize, u16, bool)> {
    let after_name = skip_name(msg, at)?;
    let owner_is_root = after_name == at + 1;
    let rtype = be16(msg, after_name)?;
    let rdlen = be16(msg, after_name + 8)? as usize;
    let end = after_name + 10 + rdlen;
    if end > msg.len() {
        return None;
    }
    Some((end, rtype, owner_is_root))
}

/// Parses an OPT record whose type field starts at `at` and which ends at `end`.
fn parse_opt(msg: &[u8], at: usize, end: usize) -> Option<Edns> {
    let payload = be16(msg, at + 2)?;
    let ttl = u32::from_be_bytes(msg.get(at + 4..at + 8)?.try_into().ok()?);
    let mut edns = Edns {
        payload,
        version: (ttl >> 16) as u8,
        dnssec_ok: ttl & EDNS_DO != 0,
        ecs: None,
        cookie: None,
    };
    let mut i = at + 10;
    while i < end {
        let code = be16(msg, i)?;
        let len = be16(msg, i + 2)? as usize;
        let data = msg.get(i + 4..i + 4 + len).filter(|_| i + 4 + len <= end)?;
        if code == EDNS_CLIENT_SUBNET {
            edns.ecs = Some(parse_ecs(data)?);
        } else if code == EDNS_COOKIE {
            // RFC 7873 section 5.2.2: a malformed COOKIE option is a FORMERR; a second
            // one is treated the same way (there is no sense in choosing one).
            if edns.cookie.is_some() {
                return None;
            }
            edns.cookie = Some(Cookie::parse(data)?);
        }
        i += 4 + len;
    }
    Some(edns)
}

/// RFC 7871 section 6: a malformed option is a FORMERR.
fn parse_ecs(data: &[u8]) -> Option<Ecs> {
    let family = be16(data, 0)?;
    let source_prefix = *data.get(2)?;
    let scope_prefix = *data.get(3)?;
    let addr_bytes = &data[4..];
    let max_prefix = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    if source_prefix > max_prefix
        || scope_prefix != 0
        || addr_bytes.len() != (source_prefix as usize).div_ceil(8)
    {
        return None;
    }
    // Address bits beyond the source prefix must be zero (RFC 7871 section 6: FORMERR).
    if let Some(&last) = addr_bytes.last()
        && source_prefix % 8 != 0
        && last & (0xFF >> (source_prefix % 8)) != 0
    {
        return None;
    }
    let addr = match family {
        1 => {
            let mut b = [0u8; 4];
            b[..addr_bytes.len()].copy_from_slice(addr_bytes);
            IpAddr::V4(Ipv4Addr::from(b))
        }
        _ => {
            let mut b = [0u8; 16];
            b[..addr_bytes.len()].copy_from_slice(addr_bytes);
            IpAddr::V6(Ipv6Addr::from(b))
        }
    };
    Some(Ecs {
        family,
        source_prefix,
        addr,
    })
}

// ---------------------------------------------------------------------------------------
// Encoding.

fn write_rr(out: &mut Vec<u8>, names: &NameWriter, rr: &Rr) {
    let owner = match rr.owner {
        Owner::Query => None,
        Owner::Name(wire) => Some(wire),
    };
    write_record(out, names, owner, rr.rtype, rr.ttl, rr.rdata, |_| {});
}

fn write_header(
    out: &mut Vec<u8>,
    h: &RequestHeader,
    rcode: ResponseCode,
    aa: bool,
    counts: [u16; 4],
) {
    let mut flags = FLAG_QR | ((h.opcode as u16) << 11) | h.echoed_flags | (u16::from(rcode) & 0xF);
    if aa {
        flags |= FLAG_AA;
    }
    let mut header = [0u8; HEADER_LEN];
    header[0..2].copy_from_slice(&h.id.to_be_bytes());
    header[2..4].copy_from_slice(&flags.to_be_bytes());
    for (k, c) in counts.iter().enumerate() {
        header[4 + 2 * k..6 + 2 * k].copy_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(&header);
}

/// EDNS option code of Extended DNS Errors (RFC 8914).
const EDNS_EDE: u16 = 15;

fn opt_len(edns: &Edns, ede: Option<u16>) -> usize {
    11 + edns
        .ecs
        .map_or(0, |e| 4 + 4 + (e.source_prefix as usize).div_ceil(8))
        + ede.map_or(0, |_| 6)
        + edns.cookie.map_or(0, |c| 4 + c.len())
}

fn write_opt(out: &mut Vec<u8>, edns: &Edns, rcode: ResponseCode, ecs_scope: u8, ede: Option<u16>) {
    out.push(0); // root owner
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&MAX_UDP_PAYLOAD.to_be_bytes());
    let mut ttl = ((u16::from(rcode) >> 4) as u32) << 24; // extended rcode, version 0
    if edns.dnssec_ok {
        ttl |= EDNS_DO;
    }
    out.extend_from_slice(&ttl.to_be_bytes());
    let rdlen_at = out.len();
    out.extend_from_slice(&[0, 0]);
    if let Some(ecs) = edns.ecs {
        // RFC 7871 section 7.2.1: echo family, source prefix and address, with our scope.
        let addr_len = (ecs.source_prefix as usize).div_ceil(8);
        out.extend_from_slice(&EDNS_CLIENT_SUBNET.to_be_bytes());
        out.extend_from_slice(&((4 + addr_len) as u16).to_be_bytes());
        out.extend_from_slice(&ecs.family.to_be_bytes());
        out.push(ecs.source_prefix);
        out.push(ecs_scope.min(ecs.source_prefix));
        match ecs.addr {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..addr_len]),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..addr_len]),
        }
    }
    if let Some(c) = &edns.cookie {
        out.extend_from_slice(&EDNS_COOKIE.to_be_bytes());
        out.extend_from_slice(&(c.len() as u16).to_be_bytes());
        out.extend_from_slice(&c.client);
        out.extend_from_slice(c.server());
    }
    if let Some(code) = ede {
        out.extend_from_slice(&EDNS_EDE.to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&code.to_be_bytes());
    }
    let rdlen = (out.len() - rdlen_at - 2) as u16;
    out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

/// The mnemonic of a response code as dig prints it (`NOERROR`, `NXDOMAIN`...); `other`
/// for codes Roundel never sends.
pub fn rcode_name(rcode: ResponseCode) -> &'static str {
    match u16::from(rcode) {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        16 => "BADVERS",
        _ => "other",
    }
}

/// The type of a question section as received (name, type, class).
pub fn question_type(question: &[u8]) -> RecordType {
    let n = question.len();
    if n < 4 {
        return RecordType::Unknown(0);
    }
    RecordType::from(u16::from_be_bytes([question[n - 4], question[n - 3]]))
}

/// Encodes the response to `query` into `out` (cleared first), at most `limit` bytes.
///
/// When the answer and authority sections do not fit, the response carries TC and no
/// records (the client retries over TCP, RFC 7766). Additional records that do not fit
/// are left out without TC (RFC 2181 section 9), except the glue of a referral (RFC 9471).
///
/// Returns whether the response was truncated.
pub fn encode(out: &mut Vec<u8>, query: &Query, resp: &Response, limit: usize) -> bool {
    if let Some(encoded) = resp.encoded {
        encode_prepared(out, query, resp, encoded);
        return false;
    }
    out.clear();
    write_header(
        out,
        &query.header,
        resp.rcode,
        resp.authoritative,
        [1, 0, 0, 0],
    );
    out.extend_from_slice(query.question);
    let question_end = out.len();
    let names = NameWriter {
        qname: query.qname(),
    };
    let reserve = query.edns.as_ref().map_or(0, |e| opt_len(e, resp.ede));

    let mut counts = [1u16, 0, 0, 0];
    let mut truncated = false;
    'sections: for (s, section) in [&resp.answer, &resp.authority, &resp.additional]
        .into_iter()
        .enumerate()
    {
        for rr in section.iter() {
            let before = out.len();
            write_rr(out, &names, rr);
            if out.len() + reserve > limit {
                out.truncate(before);
                if s < 2 || resp.referral {
                    truncated = true;
                    out.truncate(question_end);
                    counts = [1, 0, 0, 0];
                }
                break 'sections;
            }
            counts[s + 1] += 1;
        }
    }
    if let Some(edns) = &query.edns {
        write_opt(out, edns, resp.rcode, resp.ecs_scope, resp.ede);
        counts[3] += 1;
    }
    for (k, c) in counts.iter().enumerate() {
        out[4 + 2 * k..6 + 2 * k].copy_from_slice(&c.to_be_bytes());
    }
    if truncated {
        out[2] |= (FLAG_TC >> 8) as u8;
    }
    truncated
}

/// Bytes the records of a response to `query` may take within `limit`: what the header,
/// the question and the OPT record (without an Extended DNS Error, which no answer with
/// encoded sections carries) leave. See [`crate::answer::answer_at`].
pub fn room(query: &Query, limit: usize) -> usize {
    let reserve = query.edns.as_ref().map_or(0, |e| opt_len(e, None));
    limit.saturating_sub(HEADER_LEN + query.question.len() + reserve)
}

/// [`encode`] for sections encoded at load time, which the answer engine took only when
/// they fit ([`room`]): header, the question as received, the sections (pointers moved
/// when the question name is longer than their anchor), then the OPT record.
fn encode_prepared(out: &mut Vec<u8>, query: &Query, resp: &Response, encoded: Encoded) {
    out.clear();
    let counts = match encoded {
        Encoded::Answer(set) => [set.records.len() as u16, 0, 0],
        Encoded::Anchored(p, _) => p.counts(),
        Encoded::Pool { len, .. } => [len as u16, 0, 0],
    };
    let opt = query.edns.is_some() as u16;
    write_header(
        out,
        &query.header,
        resp.rcode,
        resp.authoritative,
        [1, counts[0], counts[1], counts[2] + opt],
    );
    out.extend_from_slice(query.question);
    match encoded {
        Encoded::Answer(set) => out.extend_from_slice(&set.prepared),
        Encoded::Anchored(p, anchor_len) => p.write(out, query.qname().len() - anchor_len),
        Encoded::Pool {
            pool,
            rtype,
            nodes,
            len,
            ttl,
        } => {
            let nodes = &nodes[..len as usize];
            // A fixed record length per family lets each copy be a move, not a memcpy call.
            match pool_record_len(rtype) {
                POOL_RECORD_A => put_pool_records::<POOL_RECORD_A>(out, &pool.records, nodes, ttl),
                _ => put_pool_records::<POOL_RECORD_AAAA>(out, &pool.records, nodes, ttl),
            }
        }
    }
    if let Some(edns) = &query.edns {
        write_opt(out, edns, resp.rcode, resp.ecs_scope, resp.ede);
    }
}

/// Appends the load-time records of pool nodes `nodes` (each `N` bytes, at
/// [`POOL_RECORD_STRIDE`]), each with the answer's TTL.
#[inline]
fn put_pool_records<const N: usize>(out: &mut Vec<u8>, records: &[u8], nodes: &[u8], ttl: u32) {
    out.reserve(nodes.len() * N);
    for &i in nodes {
        let at = i as usize * POOL_RECORD_STRIDE;
        let mut rec = [0u8; N];
        rec.copy_from_slice(&records[at..at + N]);
        // Pointer (2), type (2), class (2), then the TTL.
        rec[6..10].copy_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&rec);
    }
}

/// Encodes a response that carries only an rcode (and the question and OPT when known).
pub fn encode_reject(
    out: &mut Vec<u8>,
    header: &RequestHeader,
    rcode: ResponseCode,
    question: Option<&[u8]>,
    edns: Option<&Edns>,
) {
    out.clear();
    let counts = [question.is_some() as u16, 0, 0, edns.is_some() as u16];
    write_header(out, header, rcode, false, counts);
    if let Some(q) = question {
        out.extend_from_slice(q);
    }
    if let Some(e) = edns {
        write_opt(out, e, rcode, 0, None);
    }
}

/// Encodes the "slip" answer of a rate-limited query: header and question with TC set
/// and no records (plus the OPT record, with the cookie), never larger than the query, so
/// that a real client retries over TCP and a spoofed victim gets nothing amplified.
pub fn encode_slip(out: &mut Vec<u8>, query: &Query) {
    encode_reject(
        out,
        &query.header,
        ResponseCode::NoError,
        Some(query.question),
        query.edns.as_ref(),
    );
    set_truncated(out);
}

/// Sets TC in an encoded response.
pub fn set_truncated(out: &mut [u8]) {
    if let Some(b) = out.get_mut(2) {
        *b |= (FLAG_TC >> 8) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`super::parse`] with a name buffer of its own (leaked: a test's few bytes).
    fn parse(m: &[u8]) -> Parsed<'_> {
        super::parse(m, Box::leak(Box::new([0; MAX_NAME_LEN])))
    }

    fn query(name: &[u8], qtype: u16, extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(extra);
        m
    }

    #[test]
    fn parses_a_plain_query_and_lowercases_the_name() {
        let m = query(b"\x03WwW\x07example\x00", 1, &[], 0);
        let Parsed::Query(q) = parse(&m) else {
            panic!("not a query")
        };
        assert_eq!(q.qname(), b"\x03www\x07example\x00");
        assert_eq!(&q.question[..4], b"\x03WwW");
        assert_eq!(q.qtype, RecordType::A);
        assert_eq!(q.header.id, 0x1234);
        assert_eq!(q.header.echoed_flags, FLAG_RD);
        assert_eq!(q.edns, None);
        assert_eq!(q.udp_limit(), 512);
    }

    #[test]
    fn parses_edns_with_client_subnet() {
        // OPT: root, type 41, payload 4096, ttl DO, ECS family 1 /24 192.0.2.
        let mut opt = vec![
            0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2,
        ];
        opt[10] = 11;
        let m = query(b"\x01a\x00", 28, &opt, 1);
        let Parsed::Query(q) = parse(&m) else {
            panic!("not a query: {:?}", parse(&m))
        };
        let e = q.edns.unwrap();
        assert_eq!(e.payload, 4096);
        assert!(e.dnssec_ok);
        assert_eq!(e.ecs.unwrap().addr, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)));
        assert_eq!(e.ecs.unwrap().source_prefix, 24);
        assert_eq!(q.udp_limit(), 1232);
    }

    #[test]
    fn client_subnet_bits_beyond_the_prefix_are_formerr() {
        let ecs = |prefix: u8, addr: &[u8]| {
            let mut o = vec![
                0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, prefix, 0,
            ];
            o.extend_from_slice(addr);
            o[14] = 4 + addr.len() as u8;
            o[10] = 8 + addr.len() as u8;
            query(b"\x01a\x00", 1, &o, 1)
        };
        assert!(matches!(parse(&ecs(23, &[192, 0, 2])), Parsed::Query(_)));
        assert!(matches!(
            parse(&ecs(23, &[192, 0, 3])),
            Parsed::Reject {
                rcode: ResponseCode::FormErr,
                ..
            }
        ));
        assert!(matches!(parse(&ecs(24, &[192, 0, 3])), Parsed::Query(_)));
        assert!(matches!(parse(&ecs(0, &[])), Parsed::Query(_)));
    }

    #[test]
    fn flags_are_echoed_for_query_only() {
        let mut m = query(b"\x00", 1, &[], 0);
        m[3] |= 0x10; // CD
        m[2] |= 2 << 3; // opcode STATUS
        let Parsed::Reject { header, .. } = parse(&m) else {
            panic!("not a rejection")
        };
        assert_eq!(header.echoed_flags, 0);
        let mut out = Vec::new();
        encode_reject(&mut out, &header, ResponseCode::NotImp, None, None);
        assert_eq!(out[2] & 0x07, 0, "AA, TC, RD clear");
        assert_eq!(out[3] & 0xF0, 0, "RA, Z, AD, CD clear");
    }

    #[test]
    fn rejects_what_it_must() {
        // Too short, and responses: dropped.
        assert!(matches!(parse(&[0; 11]), Parsed::Drop));
        let mut r = query(b"\x00", 1, &[], 0);
        r[2] |= 0x80;
        assert!(matches!(parse(&r), Parsed::Drop));
        // Two OPT records.
        let opt = [0u8, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0];
        let m = query(b"\x00", 1, &[opt, opt].concat(), 2);
        assert!(matches!(
            parse(&m),
            Parsed::Reject {
                rcode: ResponseCode::FormErr,
                ..
            }
        ));
        // Compression pointer in the question.
        let m = query(b"\xc0\x0c", 1, &[], 0);
        assert!(matches!(
            parse(&m),
            Parsed::Reject {
                rcode: ResponseCode::FormErr,
                ..
            }
        ));
        // EDNS version 1.
        let opt = [0u8, 0, 41, 2, 0, 0, 1, 0, 0, 0, 0];
        let m = query(b"\x00", 1, &opt, 1);
        assert!(matches!(
            parse(&m),
            Parsed::Reject {
                rcode: ResponseCode::BADVERS,
                ..
            }
        ));
        // Class CH.
        let mut m = query(b"\x00", 16, &[], 0);
        let n = m.len();
        m[n - 1] = 3;
        assert!(matches!(
            parse(&m),
            Parsed::Reject {
                rcode: ResponseCode::Refused,
                ..
            }
        ));
        // ECS with a nonzero scope.
        let opt = [0u8, 0, 41, 2, 0, 0, 0, 0, 0, 0, 8, 0, 8, 0, 4, 0, 1, 0, 8];
        let m = query(b"\x00", 1, &opt, 1);
        assert!(matches!(
            parse(&m),
            Parsed::Reject {
                rcode: ResponseCode::FormErr,
                ..
            }
        ));
    }

    fn with_cookie(data: &[u8]) -> Vec<u8> {
        let mut opt = vec![0u8, 0, 41, 4, 0, 0, 0, 0, 0];
        opt.extend_from_slice(&((4 + data.len()) as u16).to_be_bytes());
        opt.extend_from_slice(&10u16.to_be_bytes());
        opt.extend_from_slice(&(data.len() as u16).to_be_bytes());
        opt.extend_from_slice(data);
        query(b"\x01a\x00", 1, &opt, 1)
    }

    #[test]
    fn cookie_lengths_8_and_16_to_40_parse_and_others_are_formerr() {
        for n in [8usize, 16, 24, 40] {
            let data: Vec<u8> = (1..=n as u8).collect();
            let m = with_cookie(&data);
            let Parsed::Query(q) = parse(&m) else {
                panic!("cookie of {n} bytes not accepted")
            };
            let c = q.edns.unwrap().cookie.unwrap();
            assert_eq!(c.client[..], data[..8]);
            assert_eq!(c.server(), &data[8..]);
        }
        for n in [0usize, 1, 7, 9, 15, 41] {
            assert!(
                matches!(
                    parse(&with_cookie(&vec![1; n])),
                    Parsed::Reject {
                        rcode: ResponseCode::FormErr,
                        ..
                    }
                ),
                "cookie of {n} bytes"
            );
        }
    }

    #[test]
    fn the_cookie_is_echoed_in_the_opt_record() {
        let query = with_cookie(&[9; 8]);
        let Parsed::Query(mut q) = parse(&query) else {
            panic!()
        };
        q.edns
            .as_mut()
            .unwrap()
            .cookie
            .as_mut()
            .unwrap()
            .set_server(&[7; 16]);
        let mut out = Vec::new();
        encode(&mut out, &q, &Response::default(), 512);
        let mut expect = vec![0u8, 10, 0, 24];
        expect.extend_from_slice(&[9; 8]);
        expect.extend_from_slice(&[7; 16]);
        assert!(out.ends_with(&expect), "{out:02x?}");
        // The slip answer: TC, no records, no larger than the query plus the server cookie.
        encode_slip(&mut out, &q);
        assert_eq!(out[2] & 0x82, 0x82);
        assert_eq!(&out[6..10], &[0, 0, 0, 0]);
        assert!(out.len() <= query.len() + 16);
    }
}
