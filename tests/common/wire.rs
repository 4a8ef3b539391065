//! An independent, strict DNS message parser for the tests.
//!
//! Responses are parsed here rather than with hickory-proto, which Roundel itself
//! uses: a bug shared by the server and the checker would otherwise go unseen.
//! Records are rendered in one canonical presentation form
//! (`owner TTL CLASS TYPE RDATA`, absolute names), which is also the form the
//! expectations in the tests are written in.

use std::fmt::Write as _;

/// Record type codes used by the tests.
pub mod ty {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const DS: u16 = 43;
    pub const OPT: u16 = 41;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const ANY: u16 = 255;
    pub const CAA: u16 = 257;
}

/// Response codes (extended codes are > 15).
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const NOTAUTH: u16 = 9;
    pub const BADVERS: u16 = 16;
}

pub fn type_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        13 => "HINFO".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        41 => "OPT".into(),
        43 => "DS".into(),
        251 => "IXFR".into(),
        252 => "AXFR".into(),
        255 => "ANY".into(),
        257 => "CAA".into(),
        _ => format!("TYPE{t}"),
    }
}

pub fn class_name(c: u16) -> String {
    match c {
        1 => "IN".into(),
        3 => "CH".into(),
        4 => "HS".into(),
        254 => "NONE".into(),
        255 => "ANY".into(),
        _ => format!("CLASS{c}"),
    }
}

pub fn rcode_name(r: u16) -> String {
    match r {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        9 => "NOTAUTH".into(),
        16 => "BADVERS".into(),
        _ => format!("RCODE{r}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Exactly as on the wire (case preserved), absolute with a trailing dot.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
    /// RDATA in presentation form (names decompressed, absolute).
    pub rdata_text: String,
}

impl Record {
    /// Canonical text `owner TTL CLASS TYPE RDATA`, with the owner and the
    /// names inside RDATA lowercased: servers may echo the query's case or the
    /// zone's (name compression against the question carries the client's case
    /// into other names), and both are correct.
    pub fn text(&self) -> String {
        let rdata = match self.rtype {
            ty::NS | ty::CNAME | ty::PTR | ty::MX | ty::SRV | ty::SOA => {
                self.rdata_text.to_ascii_lowercase()
            }
            _ => self.rdata_text.clone(),
        };
        format!(
            "{} {} {} {} {}",
            self.name.to_ascii_lowercase(),
            self.ttl,
            class_name(self.class),
            type_name(self.rtype),
            rdata
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub owner: String,
    pub payload: u16,
    pub ext_rcode: u8,
    pub version: u8,
    pub dnssec_ok: bool,
    /// The other 15 flag bits (must be zero in responses).
    pub z: u16,
    pub options: Vec<(u16, Vec<u8>)>,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub z: bool,
    pub ad: bool,
    pub cd: bool,
    /// The 4-bit header RCODE (see [`Message::rcode`] for the extended one).
    pub header_rcode: u8,
    pub questions: Vec<Question>,
    pub answer: Vec<Record>,
    pub authority: Vec<Record>,
    /// Additional records without the OPT record.
    pub additional: Vec<Record>,
    pub opt: Option<Opt>,
    /// Number of OPT records seen (a second one is a protocol error).
    pub opt_count: usize,
}

impl Message {
    /// Full (extended) response code: the OPT's upper 8 bits joined to the header's 4.
    pub fn rcode(&self) -> u16 {
        let high = self.opt.as_ref().map_or(0, |o| o.ext_rcode as u16);
        (high << 4) | self.header_rcode as u16
    }

    /// Header flags in the fixed order `qr aa tc rd ra z ad cd`.
    pub fn flags(&self) -> String {
        let mut v = Vec::new();
        for (on, name) in [
            (self.qr, "qr"),
            (self.aa, "aa"),
            (self.tc, "tc"),
            (self.rd, "rd"),
            (self.ra, "ra"),
            (self.z, "z"),
            (self.ad, "ad"),
            (self.cd, "cd"),
        ] {
            if on {
                v.push(name);
            }
        }
        v.join(" ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

type R<T> = Result<T, ParseError>;

fn err<T>(msg: impl Into<String>) -> R<T> {
    Err(ParseError(msg.into()))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> R<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| ParseError(format!("short message at {}", self.pos)))?;
        self.pos += 1;
        Ok(b)
    }
    fn u16(&mut self) -> R<u16> {
        Ok(((self.u8()? as u16) << 8) | self.u8()? as u16)
    }
    fn u32(&mut self) -> R<u32> {
        Ok(((self.u16()? as u32) << 16) | self.u16()? as u32)
    }
    fn bytes(&mut self, n: usize) -> R<&'a [u8]> {
        if self.pos + n > self.buf.len() {
            return err(format!("short message: need {n} bytes at {}", self.pos));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// Reads a possibly compressed name; pointers must point strictly backwards.
    fn name(&mut self) -> R<String> {
        let (name, end) = read_name(self.buf, self.pos)?;
        self.pos = end;
        Ok(name)
    }
}

/// Reads a name at `pos`; returns it (presentation form, absolute) and the
/// position after it in the original stream.
fn read_name(buf: &[u8], mut pos: usize) -> R<(String, usize)> {
    let mut out = String::new();
    let mut end = None;
    let mut jumps = 0;
    let mut wire_len = 0usize;
    loop {
        let len = *buf
            .get(pos)
            .ok_or_else(|| ParseError("name runs off the end".into()))?;
        match len & 0xC0 {
            0x00 => {
                pos += 1;
                wire_len += 1 + len as usize;
                if wire_len > 255 {
                    return err("name longer than 255 bytes");
                }
                if len == 0 {
                    if out.is_empty() {
                        out.push('.');
                    }
                    return Ok((out, end.unwrap_or(pos)));
                }
                let label = buf
                    .get(pos..pos + len as usize)
                    .ok_or_else(|| ParseError("label runs off the end".into()))?;
                for &b in label {
                    match b {
                        b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                            out.push('\\');
                            out.push(b as char);
                        }
                        0x21..=0x7e => out.push(b as char),
                        _ => {
                            let _ = write!(out, "\\{:03}", b);
                        }
                    }
                }
                out.push('.');
                pos += len as usize;
            }
            0xC0 => {
                let lo = *buf
                    .get(pos + 1)
                    .ok_or_else(|| ParseError("pointer runs off the end".into()))?;
                let target = (((len & 0x3F) as usize) << 8) | lo as usize;
                if end.is_none() {
                    end = Some(pos + 2);
                }
                if target >= pos {
                    return err("compression pointer does not point backwards");
                }
                jumps += 1;
                if jumps > 128 {
                    return err("too many compression pointers");
                }
                pos = target;
            }
            _ => return err(format!("bad label type {len:#x}")),
        }
    }
}

fn char_string(out: &mut String, s: &[u8]) {
    out.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{:03}", b);
            }
        }
    }
    out.push('"');
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Renders RDATA; `start` is the offset of the RDATA in `buf` (for compressed names).
fn rdata_text(buf: &[u8], start: usize, len: usize, rtype: u16) -> R<String> {
    let data = &buf[start..start + len];
    let mut r = Reader { buf, pos: start };
    let end = start + len;
    let text = match rtype {
        ty::A if len == 4 => format!("{}.{}.{}.{}", data[0], data[1], data[2], data[3]),
        ty::AAAA if len == 16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(data);
            std::net::Ipv6Addr::from(a).to_string()
        }
        ty::NS | ty::CNAME | ty::PTR => r.name()?,
        ty::MX => {
            let pref = r.u16()?;
            format!("{pref} {}", r.name()?)
        }
        ty::SRV => {
            let (p, w, port) = (r.u16()?, r.u16()?, r.u16()?);
            format!("{p} {w} {port} {}", r.name()?)
        }
        ty::SOA => {
            let m = r.name()?;
            let rn = r.name()?;
            let (s, rf, rt, ex, mi) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?);
            format!("{m} {rn} {s} {rf} {rt} {ex} {mi}")
        }
        ty::TXT | ty::HINFO => {
            let mut out = String::new();
            while r.pos < end {
                let l = r.u8()? as usize;
                if !out.is_empty() {
                    out.push(' ');
                }
                char_string(&mut out, r.bytes(l)?);
            }
            out
        }
        ty::CAA if len >= 2 => {
            let flags = data[0];
            let tl = data[1] as usize;
            if 2 + tl > len {
                return err("CAA tag runs off the RDATA");
            }
            let tag = String::from_utf8_lossy(&data[2..2 + tl]).to_string();
            let mut out = format!("{flags} {tag} ");
            char_string(&mut out, &data[2 + tl..]);
            out
        }
        _ => format!("\\# {len} {}", hex(data)),
    };
    if matches!(
        rtype,
        ty::NS | ty::CNAME | ty::PTR | ty::MX | ty::SRV | ty::SOA | ty::TXT | ty::HINFO
    ) && r.pos != end
    {
        return err(format!(
            "RDATA of {} has trailing or missing bytes",
            type_name(rtype)
        ));
    }
    Ok(text)
}

/// Parses a complete DNS message strictly (trailing bytes are an error).
pub fn parse(buf: &[u8]) -> R<Message> {
    let mut r = Reader { buf, pos: 0 };
    let id = r.u16()?;
    let f = r.u16()?;
    let (qd, an, ns, ar) = (r.u16()?, r.u16()?, r.u16()?, r.u16()?);
    let mut m = Message {
        id,
        qr: f & 0x8000 != 0,
        opcode: ((f >> 11) & 0xF) as u8,
        aa: f & 0x0400 != 0,
        tc: f & 0x0200 != 0,
        rd: f & 0x0100 != 0,
        ra: f & 0x0080 != 0,
        z: f & 0x0040 != 0,
        ad: f & 0x0020 != 0,
        cd: f & 0x0010 != 0,
        header_rcode: (f & 0xF) as u8,
        questions: vec![],
        answer: vec![],
        authority: vec![],
        additional: vec![],
        opt: None,
        opt_count: 0,
    };
    for _ in 0..qd {
        let name = r.name()?;
        m.questions.push(Question {
            name,
            qtype: r.u16()?,
            qclass: r.u16()?,
        });
    }
    for (section, count) in [(0, an), (1, ns), (2, ar)] {
        for _ in 0..count {
            let name = r.name()?;
            let (rtype, class, ttl, rdlen) = (r.u16()?, r.u16()?, r.u32()?, r.u16()? as usize);
            let start = r.pos;
            let rdata = r.bytes(rdlen)?.to_vec();
            if rtype == ty::OPT {
                if section != 2 {
                    return err("OPT outside the additional section");
                }
                m.opt_count += 1;
                let mut options = vec![];
                let mut o = Reader {
                    buf: &rdata,
                    pos: 0,
                };
                while o.pos < rdata.len() {
                    let code = o.u16()?;
                    let l = o.u16()? as usize;
                    options.push((code, o.bytes(l)?.to_vec()));
                }
                m.opt = Some(Opt {
                    owner: name,
                    payload: class,
                    ext_rcode: (ttl >> 24) as u8,
                    version: (ttl >> 16) as u8,
                    dnssec_ok: ttl & 0x8000 != 0,
                    z: (ttl & 0x7FFF) as u16,
                    options,
                });
                continue;
            }
            let rdata_text = rdata_text(buf, start, rdlen, rtype)?;
            let rec = Record {
                name,
                rtype,
                class,
                ttl,
                rdata,
                rdata_text,
            };
            match section {
                0 => m.answer.push(rec),
                1 => m.authority.push(rec),
                _ => m.additional.push(rec),
            }
        }
    }
    if r.pos != buf.len() {
        return err(format!("{} trailing bytes", buf.len() - r.pos));
    }
    Ok(m)
}

// ---------------------------------------------------------------------------
// Raw query construction, for the malformed and unusual queries that
// hickory-proto refuses to build.

/// Encodes a presentation name (absolute or not; `.` is the root) as
/// uncompressed wire labels. No escapes.
pub fn encode_name(name: &str) -> Vec<u8> {
    let mut out = vec![];
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A 12-byte header.
pub fn header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    let mut h = vec![];
    for v in [id, flags, qd, an, ns, ar] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h
}

/// A question entry.
pub fn question(name: &str, qtype: u16, qclass: u16) -> Vec<u8> {
    let mut q = encode_name(name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    q
}

/// An OPT record with the given payload, TTL field and raw RDATA.
pub fn opt_record(payload: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut o = vec![0u8];
    o.extend_from_slice(&ty::OPT.to_be_bytes());
    o.extend_from_slice(&payload.to_be_bytes());
    o.extend_from_slice(&ttl.to_be_bytes());
    o.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    o.extend_from_slice(rdata);
    o
}
