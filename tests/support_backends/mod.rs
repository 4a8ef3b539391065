//! Real test backends for health-check integration tests: small HTTP(S) and TCP servers
//! on 127.0.0.x that a test starts, reconfigures, stops (to make a node fail) and restarts
//! on the same address. Plus helpers to build pools from TOML and to wait for conditions
//! with a bound.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::Name;
use roundel::pool::{PoolSpec, RawCheck, RawPool, validate};
use roundel::source::SourceMap;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use toml::Spanned;

/// How a backend answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Answer with this status, extra headers and body.
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Accept the connection, read the request, never answer.
    Hang,
    /// Answer 200 "ok" after this delay.
    Slow(Duration),
}

impl Mode {
    pub fn ok() -> Self {
        Self::status(200, "ok")
    }
    pub fn status(status: u16, body: &str) -> Self {
        Mode::Reply {
            status,
            headers: vec![],
            body: body.into(),
        }
    }
    pub fn header(name: &str, value: &str) -> Self {
        Mode::Reply {
            status: 200,
            headers: vec![(name.into(), value.into())],
            body: "ok".into(),
        }
    }
}

/// What a backend saw of one request.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub sni: Option<String>,
    pub at: Option<Instant>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Http,
    Https,
    /// Accepts and closes: a TCP-check target.
    Tcp,
}

struct Shared {
    mode: Mutex<Mode>,
    hits: AtomicU64,
    seen: Mutex<Vec<Seen>>,
}

/// One backend server.
pub struct Backend {
    pub addr: SocketAddr,
    kind: Kind,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Backend {
    /// An HTTP backend on `ip` (port chosen by the OS).
    pub async fn http(ip: &str, mode: Mode) -> Self {
        Self::start_new(ip, Kind::Http, mode).await
    }

    /// An HTTPS backend with a self-signed certificate for `backend.test`.
    pub async fn https(ip: &str, mode: Mode) -> Self {
        Self::start_new(ip, Kind::Https, mode).await
    }

    /// A TCP backend that accepts and closes.
    pub async fn tcp(ip: &str) -> Self {
        Self::start_new(ip, Kind::Tcp, Mode::ok()).await
    }

    /// An HTTP backend on a given address and port.
    pub async fn http_at(addr: SocketAddr, mode: Mode) -> Self {
        Self::start_new(&addr.ip().to_string(), Kind::Http, mode)
            .await
            .moved_to(addr)
            .await
    }

    async fn moved_to(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self.restart().await;
        self
    }

    async fn start_new(ip: &str, kind: Kind, mode: Mode) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind test backend");
        let addr = listener.local_addr().unwrap();
        let tls = (kind == Kind::Https).then(tls_config);
        let mut b = Self {
            addr,
            kind,
            shared: Arc::new(Shared {
                mode: Mutex::new(mode),
                hits: AtomicU64::new(0),
                seen: Mutex::new(Vec::new()),
            }),
            task: None,
            tls,
        };
        b.serve(listener);
        b
    }

    fn serve(&mut self, listener: TcpListener) {
        let shared = self.shared.clone();
        let kind = self.kind;
        let tls = self.tls.clone();
        self.task = Some(tokio::spawn(async move {
            // Connection tasks live in this set: aborting the accept task drops it and
            // with it every open connection, like a killed process.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    acc = listener.accept() => {
                        let Ok((sock, _)) = acc else { continue };
                        let shared = shared.clone();
                        let tls = tls.clone();
                        conns.spawn(async move {
                            match kind {
                                Kind::Tcp => {
                                    shared.hits.fetch_add(1, Ordering::SeqCst);
                                }
                                Kind::Http => handle(sock, None, &shared).await,
                                Kind::Https => {
                                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.unwrap());
                                    let fut = acceptor.accept(sock);
                                    if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(5), fut).await {
                                        let sni = s.get_ref().1.server_name().map(str::to_owned);
                                        handle(s, sni, &shared).await;
                                    }
                                }
                            }
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        }));
    }

    /// Stops the server: the port refuses connections, open connections are dropped.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Starts the server again on the same address.
    pub async fn restart(&mut self) {
        self.stop().await;
        // The port was ours a moment ago; retry briefly in case the kernel lags.
        for _ in 0..50 {
            if let Ok(l) = TcpListener::bind(self.addr).await {
                self.serve(l);
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("could not rebind {}", self.addr);
    }

    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Requests (or TCP connections) received so far.
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// What each HTTP request looked like.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, sni: Option<String>, shared: &Shared) {
    // Read the request head (bounded in size and time).
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    shared.seen.lock().unwrap().push(Seen {
        request_line,
        headers,
        sni,
        at: Some(Instant::now()),
    });
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let mode = shared.mode.lock().unwrap().clone();
    let (status, extra, body) = match mode {
        Mode::Reply {
            status,
            headers,
            body,
        } => (status, headers, body),
        Mode::Hang => {
            // Hold the connection open without a byte (bounded: the test ends first).
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            (200, vec![], "ok".to_owned())
        }
    };
    let mut resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (n, v) in extra {
        resp.push_str(&format!("{n}: {v}\r\n"));
    }
    resp.push_str("\r\n");
    resp.push_str(&body);
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    let ck = rcgen::generate_simple_self_signed(vec!["backend.test".to_owned()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    Arc::new(cfg)
}

/// An address with nothing listening: connections are refused at once.
pub async fn dead_addr(ip: &str) -> SocketAddr {
    let l = TcpListener::bind((ip, 0)).await.unwrap();
    l.local_addr().unwrap()
}

#[derive(Deserialize)]
struct Zone {
    #[serde(default)]
    checks: BTreeMap<Spanned<String>, RawCheck>,
    #[serde(default)]
    pools: BTreeMap<Spanned<String>, RawPool>,
}

/// Pools from zone-file TOML (origin `example.com.`); panics on any validation error.
pub fn pools(text: &str) -> Vec<PoolSpec> {
    let zone: Zone = toml::from_str(text).expect("test zone parses");
    let mut map = SourceMap::new(Path::new("test.toml"), text);
    let origin = Name::from_ascii("example.com.").unwrap();
    let out = validate(&mut map, &origin, zone.checks, zone.pools);
    let errors = map.into_errors();
    assert!(errors.is_empty(), "zone errors: {errors:#?}");
    out
}

/// Polls `cond` every 5 ms until it holds or `bound` passes; returns the time it took.
pub async fn wait_for(bound: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    let polls = bound.as_millis() / 5 + 1;
    for _ in 0..polls {
        if cond() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        if start.elapsed() > bound {
            break;
        }
    }
    cond().then(|| start.elapsed())
}
