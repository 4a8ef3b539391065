//! Helpers for the operations tests: Roundel in-process with its admin listener on
//! 127.0.0.1:0, a small DNS client, an HTTP client for the admin API, zone file builders
//! and bounded waits.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;
use roundel::admin::Token;
use roundel::server::{Listeners, ServeOptions};
use serde_json::Value;

pub mod daemon;
#[path = "../in_process/mod.rs"]
pub mod in_process;
use in_process::InProcess;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

static SEQ: AtomicU64 = AtomicU64::new(0);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "roundel-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `text` to `path` atomically (temp file + rename), as editors and deploy tools do.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A zone file for `origin` with `serial` (a number or `"auto"`) and `body` appended.
pub fn zone(origin: &str, serial: &str, body: &str) -> String {
    format!(
        r#"origin = "{origin}"
ttl = 300
[soa]
mname = "ns1"
rname = "hostmaster"
serial = {serial}
refresh = 14400
retry = 3600
expire = 1209600
minimum = 60
[names."@"]
NS = ["ns1"]
[names.ns1]
A = "192.0.2.53"
{body}
"#
    )
}

/// How to start a server.
#[derive(Clone, Default)]
pub struct Opts {
    pub token: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub watch: bool,
    /// Connection caps and timeouts (default: the built-in ones).
    pub limits: Option<roundel::limits::Limits>,
}

/// Roundel in-process on its own thread and runtime: DNS on 127.0.0.1:0 (UDP and TCP),
/// admin on 127.0.0.1:0. Stopped on drop.
pub struct Server {
    pub dns: SocketAddr,
    pub admin: SocketAddr,
    server: InProcess,
}

impl Server {
    /// Starts and waits (at most 15 s) until the admin API answers, which is after the
    /// first load.
    pub fn start(zones: &Path, o: Opts) -> Server {
        Self::try_start(zones, o).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Like `start`, but returns why it did not start.
    pub fn try_start(zones: &Path, o: Opts) -> Result<Server, String> {
        let mut listeners = Listeners::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
        let admin = listeners
            .bind_admin("127.0.0.1:0".parse().unwrap())
            .unwrap();
        let dns = listeners.udp_addrs()[0];
        let mut opts = ServeOptions::new(zones);
        opts.udp_threads = 2;
        // Load tests send thousands of queries a second from 127.0.0.1: exempt it from
        // rate limiting (tests/rrl_flood.rs floods from other addresses).
        opts.rrl.exempt = vec![roundel::dns::rrl_config::Prefix::parse("127.0.0.1").unwrap()];
        opts.watch_zones = o.watch;
        opts.admin_token = o.token.as_deref().and_then(Token::new);
        opts.state_dir = o.state_dir.clone();
        if let Some(l) = &o.limits {
            opts.limits = l.clone();
        }
        let mut s = Server {
            dns,
            admin,
            server: InProcess::spawn("roundel-ops-server", opts, listeners),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        for _ in 0..300 {
            if let Some(why) = s.server.exited() {
                return Err(why);
            }
            if http_get_blocking(admin, "/api/v1/status").is_some_and(|(st, _)| st == 200) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("admin API not up within 15 s".into())
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }
}

/// A minimal blocking HTTP/1.1 GET (for start-up polling without a runtime).
pub fn http_get_blocking(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    // Read until the connection closes or Content-Length bytes of body have arrived
    // (some servers keep the connection open).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    for _ in 0..10_000 {
        let n = match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) if !buf.is_empty() => break,
            Err(_) => return None,
        };
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if len.is_some_and(|len| body.len() >= len) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|x| x.1.to_owned())?;
    Some((status, body))
}

/// The value of the series `series` (`name` or `name{labels}`) in the /metrics of the
/// admin listener at `admin`; `None` when the scrape has no such line.
pub fn metric_value(admin: SocketAddr, series: &str) -> Option<u64> {
    let (status, body) = http_get_blocking(admin, "/metrics").expect("metrics answered");
    assert_eq!(status, 200);
    body.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// An HTTP client for the admin API.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Sends a request; returns status and JSON body (or the body as a JSON string).
pub async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = c.request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

pub async fn get(c: &reqwest::Client, url: &str) -> Value {
    let (st, v) = call(c, reqwest::Method::GET, url, None, None).await;
    assert_eq!(st, 200, "GET {url}: {v}");
    v
}

/// Builds a query with EDNS off, id `id`.
pub fn query_bytes(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.push(0);
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b
}

pub const A: u16 = 1;
pub const SOA: u16 = 6;
pub const AAAA: u16 = 28;

/// One UDP exchange, 2 s timeout, 3 tries.
pub fn query(server: SocketAddr, name: &str, qtype: u16) -> Message {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    for attempt in 0..3u16 {
        let id = 0x4000 + attempt;
        sock.send_to(&query_bytes(id, name, qtype), server).unwrap();
        let mut buf = [0u8; 4096];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            let m = Message::from_vec(&buf[..n]).unwrap();
            if m.metadata.id == id {
                return m;
            }
        }
    }
    panic!("no answer from {server} for {name} type {qtype}");
}

/// The A / AAAA addresses of an answer, sorted.
pub fn addrs(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// The SOA serial in the answer.
pub fn serial(m: &Message) -> u32 {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    m.answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
        .expect("a SOA in the answer")
}

/// Polls an async condition every 20 ms until it holds or `bound` passes.
pub async fn eventually<F, Fut>(bound: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    for _ in 0..(bound.as_millis() / 20 + 1) {
        if f().await {
            return;
        }
        if start.elapsed() > bound {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(f().await, "not within {bound:?}: {what}");
}

/// The node `label` of pool `pool` in a status document.
pub fn node<'a>(status: &'a Value, pool: &str, label: &str) -> &'a Value {
    status["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == pool)
        .unwrap_or_else(|| panic!("no pool {pool} in {status}"))["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["label"] == label)
        .unwrap_or_else(|| panic!("no node {label} in pool {pool}"))
}
