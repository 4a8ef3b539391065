//! A tiny DNS client over real UDP and TCP sockets, with bounded timeouts.
//!
//! Well-formed queries are built with `hickory_proto::op::Message`; malformed
//! ones are given as raw bytes. Responses are parsed with the independent
//! parser in [`super::wire`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Name, RecordType};

use super::wire;

/// How long we wait for one answer. Loopback answers take microseconds; a
/// missing answer after this long counts as "no response".
pub const TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        })
    }
}

#[derive(Debug, Clone)]
pub struct EdnsQ {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    pub options: Vec<(u16, Vec<u8>)>,
}

/// A query. By default: class IN, opcode QUERY, RD clear, EDNS version 0 with
/// a 1232-byte payload (what dig and modern resolvers send).
#[derive(Debug, Clone)]
pub struct Q {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    pub opcode: u8,
    pub rd: bool,
    pub cd: bool,
    pub ad: bool,
    pub edns: Option<EdnsQ>,
    /// Raw message bytes; overrides everything above (bytes 0..2 are replaced
    /// by a fresh id when the message is at least 2 bytes long).
    pub raw: Option<Vec<u8>>,
    /// Human description of a raw query.
    pub label: String,
}

impl Q {
    pub fn new(name: &str, qtype: u16) -> Q {
        Q {
            name: name.to_string(),
            qtype,
            qclass: 1,
            opcode: 0,
            rd: false,
            cd: false,
            ad: false,
            edns: Some(EdnsQ {
                payload: 1232,
                version: 0,
                dnssec_ok: false,
                options: vec![],
            }),
            raw: None,
            label: String::new(),
        }
    }
    pub fn raw(label: &str, bytes: Vec<u8>) -> Q {
        let mut q = Q::new(".", 0);
        q.raw = Some(bytes);
        q.label = label.to_string();
        q
    }
    pub fn no_edns(mut self) -> Q {
        self.edns = None;
        self
    }
    pub fn payload(mut self, p: u16) -> Q {
        self.edns
            .get_or_insert(EdnsQ {
                payload: p,
                version: 0,
                dnssec_ok: false,
                options: vec![],
            })
            .payload = p;
        self
    }
    pub fn edns_version(mut self, v: u8) -> Q {
        self.edns.as_mut().expect("EDNS").version = v;
        self
    }
    pub fn dnssec_ok(mut self) -> Q {
        self.edns.as_mut().expect("EDNS").dnssec_ok = true;
        self
    }
    pub fn option(mut self, code: u16, data: &[u8]) -> Q {
        self.edns
            .as_mut()
            .expect("EDNS")
            .options
            .push((code, data.to_vec()));
        self
    }
    pub fn class(mut self, c: u16) -> Q {
        self.qclass = c;
        self
    }
    pub fn opcode(mut self, o: u8) -> Q {
        self.opcode = o;
        self
    }
    pub fn rd(mut self) -> Q {
        self.rd = true;
        self
    }
    pub fn cd(mut self) -> Q {
        self.cd = true;
        self
    }
    pub fn ad(mut self) -> Q {
        self.ad = true;
        self
    }

    /// Whether the query carries an OPT record.
    pub fn has_edns(&self) -> bool {
        self.raw.is_none() && self.edns.is_some()
    }

    /// Largest UDP response the client accepts.
    pub fn udp_limit(&self) -> usize {
        match &self.edns {
            Some(e) if self.raw.is_none() => e.payload.max(512) as usize,
            _ => 512,
        }
    }

    /// Short description for test output.
    pub fn describe(&self) -> String {
        if self.raw.is_some() {
            return format!("raw: {}", self.label);
        }
        let mut s = format!(
            "{} {} {}",
            self.name,
            wire::class_name(self.qclass),
            wire::type_name(self.qtype)
        );
        if self.opcode != 0 {
            s += &format!(" opcode={}", self.opcode);
        }
        for (on, f) in [(self.rd, " +rd"), (self.cd, " +cd"), (self.ad, " +ad")] {
            if on {
                s += f;
            }
        }
        match &self.edns {
            None => s += " +noedns",
            Some(e) => {
                s += &format!(" +edns={} +bufsize={}", e.version, e.payload);
                if e.dnssec_ok {
                    s += " +do";
                }
                for (c, d) in &e.options {
                    s += &format!(
                        " +opt={c}:{}",
                        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    );
                }
            }
        }
        s
    }

    /// The query on the wire.
    pub fn to_bytes(&self, id: u16) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            let mut b = raw.clone();
            if b.len() >= 2 {
                b[..2].copy_from_slice(&id.to_be_bytes());
            }
            return b;
        }
        let mut m = Message::new(id, MessageType::Query, OpCode::from_u8(self.opcode));
        m.metadata.recursion_desired = self.rd;
        m.metadata.checking_disabled = self.cd;
        m.metadata.authentic_data = self.ad;
        // Label by label, not `Name::from_ascii`: that refuses `/`, which RFC 2317
        // names use ("128/25"). Query names in the cases carry no escapes.
        let body = self.name.strip_suffix('.').unwrap_or(&self.name);
        let mut name = if body.is_empty() {
            Name::root()
        } else {
            Name::from_labels(body.split('.').map(str::as_bytes)).expect("query name")
        };
        name.set_fqdn(true);
        let mut q = Query::query(name, RecordType::from(self.qtype));
        q.set_query_class(DNSClass::from(self.qclass));
        m.add_query(q);
        if let Some(e) = &self.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(e.payload);
            edns.set_version(e.version);
            edns.set_dnssec_ok(e.dnssec_ok);
            for (code, data) in &e.options {
                edns.options_mut()
                    .insert(EdnsOption::Unknown(*code, data.clone()));
            }
            m.set_edns(edns);
        }
        let bytes = m.to_vec().expect("encode query");
        // hickory must have built what we asked for; check with our own parser.
        let back = wire::parse(&bytes).expect("our own query parses");
        assert_eq!(back.questions[0].qclass, self.qclass, "query class encoded");
        assert_eq!(back.opcode, self.opcode, "opcode encoded");
        bytes
    }
}

/// The result of one exchange.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The server sent these bytes (parsed, or why they do not parse).
    Response {
        raw: Vec<u8>,
        parsed: Result<wire::Message, wire::ParseError>,
        /// The id we sent (`None` for raw queries shorter than 2 bytes).
        query_id: Option<u16>,
    },
    /// Nothing within [`TIMEOUT`] (UDP), or the connection was closed (TCP).
    NoResponse,
}

impl Outcome {
    pub fn message(&self) -> Option<&wire::Message> {
        match self {
            Outcome::Response { parsed: Ok(m), .. } => Some(m),
            _ => None,
        }
    }
    pub fn raw(&self) -> Option<&[u8]> {
        match self {
            Outcome::Response { raw, .. } => Some(raw),
            _ => None,
        }
    }
}

fn fresh_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() as u16).wrapping_mul(7919);
    seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(40503))
}

/// Sends `q` to `addr` over `t` and waits (bounded by [`TIMEOUT`]) for the answer.
pub fn exchange(addr: SocketAddr, t: Transport, q: &Q) -> Outcome {
    exchange_within(addr, t, q, TIMEOUT)
}

/// As [`exchange`], waiting at most `timeout`.
pub fn exchange_within(addr: SocketAddr, t: Transport, q: &Q, timeout: Duration) -> Outcome {
    let id = fresh_id();
    let bytes = q.to_bytes(id);
    let raw = match t {
        Transport::Udp => udp(addr, &bytes, id, timeout),
        Transport::Tcp => tcp(addr, &bytes, timeout),
    };
    match raw {
        Some(raw) => {
            let parsed = wire::parse(&raw);
            let query_id = (bytes.len() >= 2).then_some(id);
            Outcome::Response {
                raw,
                parsed,
                query_id,
            }
        }
        None => Outcome::NoResponse,
    }
}

/// One UDP exchange; answers with a different id are ignored (at most 8).
pub fn udp(addr: SocketAddr, bytes: &[u8], id: u16, timeout: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind UDP client");
    sock.connect(addr).expect("connect UDP");
    sock.send(bytes).expect("send UDP");
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    for _ in 0..8 {
        let left = deadline.checked_duration_since(Instant::now())?;
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                if bytes.len() < 2 || (n >= 2 && buf[..2] == id.to_be_bytes()) {
                    return Some(buf[..n].to_vec());
                }
            }
            Err(_) => return None,
        }
    }
    None
}

/// One TCP exchange on a fresh connection (2-byte length prefix, RFC 1035 4.2.2).
pub fn tcp(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).expect("connect TCP");
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).ok()?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}
