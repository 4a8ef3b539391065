//! Helpers for the rate-limiting and cookie tests: Roundel in-process with chosen
//! `[rrl]`/`[cookies]` settings and its admin listener (for /metrics), raw queries with a
//! COOKIE option from a chosen 127.0.0.x source, and the few response fields they need.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use roundel::dns::rrl_config::{CookieConfig, RrlConfig};
use roundel::server::{Listeners, ServeOptions};

#[path = "../ops_support/mod.rs"]
pub mod ops_support;
use ops_support::in_process::InProcess;

/// The shipped zones: `big.example.test TXT` is their largest UDP answer (949 bytes with
/// EDNS for a 45-byte query).
pub fn shipped_zones() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("zones")
}

/// Roundel in-process (own thread and runtime) on 127.0.0.1:0, admin on 127.0.0.1:0.
pub struct Server {
    pub dns: SocketAddr,
    pub admin: SocketAddr,
    server: InProcess,
}

impl Server {
    pub fn start(zones: &Path, rrl: RrlConfig, cookies: CookieConfig) -> Server {
        let mut listeners = Listeners::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
        let admin = listeners
            .bind_admin("127.0.0.1:0".parse().unwrap())
            .unwrap();
        let dns = listeners.udp_addrs()[0];
        let mut opts = ServeOptions::new(zones);
        opts.udp_threads = 2;
        opts.watch_zones = false;
        opts.rrl = rrl;
        opts.cookies = cookies;
        let s = Server {
            dns,
            admin,
            server: InProcess::spawn("roundel-hardening", opts, listeners),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while ops_support::http_get_blocking(admin, "/api/v1/status")
            .is_none_or(|(st, _)| st != 200)
        {
            assert!(
                Instant::now() < deadline && s.server.running(),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// The value of one metric line (`name{labels}`), 0 when absent.
    pub fn metric(&self, series: &str) -> u64 {
        metric(self.admin, series)
    }
}

/// The value of `series` in the /metrics of the admin listener at `admin`.
pub fn metric(admin: SocketAddr, series: &str) -> u64 {
    ops_support::metric_value(admin, series).unwrap_or(0)
}

/// A wire-format name.
pub fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A query for `name`/`qtype` with EDNS (payload 1232) and, when given, a COOKIE option
/// with these bytes.
pub fn query(id: u16, name: &str, qtype: u16, cookie: Option<&[u8]>) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    m.extend_from_slice(&wire_name(name));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    let opt: Vec<u8> = cookie.map_or(Vec::new(), |c| {
        let mut o = vec![0, 10];
        o.extend_from_slice(&(c.len() as u16).to_be_bytes());
        o.extend_from_slice(c);
        o
    });
    m.extend_from_slice(&(opt.len() as u16).to_be_bytes());
    m.extend_from_slice(&opt);
    m
}

/// The fields of a response these tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: u16,
    pub tc: bool,
    pub rcode: u8,
    pub answers: u16,
    pub len: usize,
    /// The COOKIE option's data, if any.
    pub cookie: Option<Vec<u8>>,
}

/// Reads the header and the COOKIE option of a response (its OPT is the last record).
pub fn reply(b: &[u8]) -> Reply {
    assert!(b.len() >= 12, "short reply");
    let cookie = b.windows(4).enumerate().rev().find_map(|(i, w)| {
        // `00 0a LL LL` followed by exactly LL bytes up to the end (the last option).
        let len = u16::from_be_bytes([w[2], w[3]]) as usize;
        let valid_len = len == 8 || (16..=40).contains(&len);
        (w[..2] == [0, 10] && valid_len && i + 4 + len == b.len()).then(|| b[i + 4..].to_vec())
    });
    Reply {
        id: u16::from_be_bytes([b[0], b[1]]),
        tc: b[2] & 0x02 != 0,
        rcode: b[3] & 0x0f,
        answers: u16::from_be_bytes([b[6], b[7]]),
        len: b.len(),
        cookie,
    }
}

/// A UDP socket on `source` (any 127.0.0.0/8 address), port 0.
pub fn udp_from(source: &str) -> UdpSocket {
    let s = UdpSocket::bind((source.parse::<IpAddr>().unwrap(), 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

/// One query and its reply (within 1 s), or `None`.
pub fn ask(sock: &UdpSocket, to: SocketAddr, msg: &[u8]) -> Option<Reply> {
    sock.send_to(msg, to).unwrap();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if let Ok((n, _)) = sock.recv_from(&mut buf)
            && buf[..2] == msg[..2]
        {
            return Some(reply(&buf[..n]));
        }
    }
    None
}

/// One query over TCP from `source`, its reply within 2 s.
pub fn ask_tcp(source: &str, to: SocketAddr, msg: &[u8]) -> Reply {
    use socket2::{Domain, Socket, Type};
    use std::io::{Read, Write};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(source.parse().unwrap(), 0).into())
        .unwrap();
    s.connect_timeout(&to.into(), Duration::from_secs(2))
        .unwrap();
    let mut s: std::net::TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    reply(&body)
}

/// What a flood got back.
#[derive(Debug, Default, Clone, Copy)]
pub struct FloodResult {
    pub sent: usize,
    pub bytes_sent: usize,
    /// Replies with records and without TC.
    pub answered: usize,
    /// Replies with TC and no records (slipped).
    pub slipped: usize,
    pub bytes_received: usize,
    /// Size of a full answer, of a slipped one (as last seen).
    pub answer_len: usize,
    pub slip_len: usize,
}

impl FloodResult {
    pub fn dropped(&self) -> usize {
        self.sent - self.answered - self.slipped
    }
    pub fn amplification(&self) -> f64 {
        self.bytes_received as f64 / self.bytes_sent as f64
    }
}

/// Sends `count` copies of `msg` (IDs 0..count) from `source` to `to`, paced evenly over
/// `over`, and counts the replies (until 500 ms after the last send, bounded).
pub fn flood(
    source: &str,
    to: SocketAddr,
    msg: &[u8],
    count: usize,
    over: Duration,
) -> FloodResult {
    let sock = udp_from(source);
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let rx = sock.try_clone().unwrap();
    let receiver = std::thread::spawn(move || {
        let mut r = FloodResult::default();
        let mut buf = [0u8; 4096];
        let mut last = Instant::now();
        let hard = Instant::now() + Duration::from_secs(30);
        while last.elapsed() < Duration::from_millis(500) && Instant::now() < hard {
            if let Ok((n, _)) = rx.recv_from(&mut buf) {
                last = Instant::now();
                let rep = reply(&buf[..n]);
                r.bytes_received += n;
                if rep.tc && rep.answers == 0 {
                    r.slipped += 1;
                    r.slip_len = n;
                } else if rep.answers > 0 {
                    r.answered += 1;
                    r.answer_len = n;
                }
            }
        }
        r
    });
    let start = Instant::now();
    let mut m = msg.to_vec();
    for i in 0..count {
        // Even pacing: wait for this query's slot (bounded by `over`).
        let due = start + over.mul_f64(i as f64 / count as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        m[..2].copy_from_slice(&(i as u16).to_be_bytes());
        sock.send_to(&m, to).unwrap();
    }
    let mut r = receiver.join().unwrap();
    r.sent = count;
    r.bytes_sent = count * msg.len();
    r
}
