//! One check of one target: an HTTP(S) request or a TCP connect, bounded by the timeout.

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::http_check::{PlainHttp, USER_AGENT};
use super::keep::KeptConnections;
use super::tls;
use crate::node::{Failure, Reported};
use crate::pool::spec::MAX_WEIGHT;
use crate::pool::{CheckKind, CheckSpec, HttpCheck, ProbeTarget, WeightSource};

/// The result of one check.
#[derive(Debug)]
pub struct CheckResult {
    /// `Ok` with the reported weight (if the check reads one), or why it failed.
    pub outcome: Result<Option<Reported>, Failure>,
    /// A reported weight that was present but unreadable.
    pub weight_error: Option<String>,
    /// Time the check took.
    pub rtt: Duration,
    /// The check could not be made for a reason on this host (no descriptor, no memory,
    /// no local address): an error of the checker, not evidence against the target. The
    /// outcome is then not to be counted ([`super::local`]).
    pub local_error: Option<String>,
}

/// A ready-to-run check for one target: the HTTP client is built once, not per check.
pub enum Prober {
    /// HTTPS (through the HTTP client library).
    Http(Box<HttpProber>),
    /// Plain HTTP (a pre-built request on a fresh connection, or a kept one).
    PlainHttp(Box<PlainHttp>),
    /// TCP connect (from a source address, if set).
    Tcp(SocketAddr, Option<std::net::IpAddr>),
    /// Nothing to probe.
    None,
    /// The check cannot run (bad TLS setup); every check fails with this.
    Broken(Failure),
}

/// An HTTPS check bound to one target.
pub struct HttpProber {
    client: reqwest::Client,
    method: reqwest::Method,
    url: String,
    headers: HeaderMap,
    check: HttpCheck,
}

impl Prober {
    /// Prepares the check `spec` against `target`, with a bound of its own on kept
    /// connections (one: a probe keeps at most one).
    pub fn new(spec: &CheckSpec, target: &ProbeTarget) -> Self {
        Self::with_source(spec, target, None, &KeptConnections::new(1))
    }

    /// Prepares the check `spec` against `target`, connecting from `source` when set
    /// (instances sharing a host each get their own, so a backend can tell them apart). A
    /// plain-HTTP check with `reuse_connection` keeps its connection only while `kept`
    /// has room.
    pub fn with_source(
        spec: &CheckSpec,
        target: &ProbeTarget,
        source: Option<std::net::IpAddr>,
        kept: &Arc<KeptConnections>,
    ) -> Self {
        let addr = SocketAddr::new(target.addr, target.port);
        match &spec.kind {
            CheckKind::None => Prober::None,
            CheckKind::Tcp { .. } => Prober::Tcp(addr, source),
            CheckKind::Http(h) if !h.tls => match PlainHttp::new(h, target, source, kept) {
                Ok(p) => Prober::PlainHttp(Box::new(p)),
                Err(e) => Prober::Broken(Failure::Setup(e)),
            },
            CheckKind::Http(h) => match HttpProber::new(h, target, spec.timeout, source) {
                Ok(p) => Prober::Http(Box::new(p)),
                Err(e) => Prober::Broken(Failure::Setup(e)),
            },
        }
    }

    /// Runs one check, never longer than `timeout`.
    pub async fn run(&self, timeout: Duration) -> CheckResult {
        let start = Instant::now();
        let mut weight_error = None;
        let mut local_error = None;
        let fut = async {
            match self {
                Prober::None => Ok(None),
                Prober::Broken(f) => Err(f.clone()),
                Prober::Tcp(addr, source) => match connect(*addr, *source).await {
                    Ok(stream) => {
                        reset_on_close(&stream);
                        Ok(None)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        Err(Failure::Refused)
                    }
                    Err(e) => {
                        if super::local::is_local(&e) {
                            local_error = Some(e.to_string());
                        }
                        Err(Failure::Connect(e.to_string()))
                    }
                },
                Prober::Http(h) => h.run(&mut weight_error, &mut local_error).await,
                Prober::PlainHttp(h) => h.run(&mut weight_error, &mut local_error).await,
            }
        };
        // The hard bound: whatever the client does, a check ends at `timeout`.
        let outcome = match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        };
        CheckResult {
            outcome,
            weight_error,
            rtt: start.elapsed(),
            local_error,
        }
    }
}

impl HttpProber {
    fn new(
        check: &HttpCheck,
        target: &ProbeTarget,
        timeout: Duration,
        source: Option<std::net::IpAddr>,
    ) -> Result<Self, String> {
        let addr = SocketAddr::new(target.addr, target.port);
        // Host header: the node's check_host, else the check's host.
        let host = target.host.as_deref().or(check.host.as_deref());
        // TLS name: sni, else the host name (without port) when it is a DNS name.
        let tls_name = check.sni.clone().or_else(|| {
            let h = host?;
            let bare = h.rsplit_once(':').map_or(h, |(n, p)| {
                if p.parse::<u16>().is_ok() && !n.contains(':') {
                    n
                } else {
                    h
                }
            });
            (bare.parse::<std::net::IpAddr>().is_err() && !bare.starts_with('['))
                .then(|| bare.to_owned())
        });
        let tls_config = if !check.tls || check.verify_tls {
            // Plain HTTP clients get a config too: reqwest needs one at build time
            // and would otherwise look for (and panic without) a default provider.
            tls::verifying().or_else(|e| if check.tls { Err(e) } else { tls::insecure() })?
        } else {
            tls::insecure()?
        };
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            // A fresh connection for every check: a pooled connection would hide a
            // server that no longer accepts new ones.
            .pool_max_idle_per_host(0)
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(USER_AGENT)
            .tls_backend_preconfigured(tls_config)
            .local_address(source);
        let scheme = if check.tls { "https" } else { "http" };
        let url = match (&tls_name, check.tls) {
            (Some(name), true) => {
                // Connect to the target's address but name the server in SNI (and verify
                // the certificate for that name).
                builder = builder.resolve(name, addr);
                format!("{scheme}://{name}:{}{}", target.port, check.path)
            }
            _ => format!("{scheme}://{addr}{}", check.path),
        };
        let client = builder.build().map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        if let Some(h) = host {
            headers.insert(
                reqwest::header::HOST,
                HeaderValue::from_str(h).map_err(|e| e.to_string())?,
            );
        }
        // Tell the server not to keep the connection: it is not reused anyway.
        headers.insert(
            reqwest::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
        for (n, v) in &check.headers {
            headers.insert(
                HeaderName::from_bytes(n.as_bytes()).map_err(|e| e.to_string())?,
                HeaderValue::from_str(v).map_err(|e| e.to_string())?,
            );
        }
        let method =
            reqwest::Method::from_bytes(check.method.as_bytes()).map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            method,
            url,
            headers,
            check: check.clone(),
        })
    }

    async fn run(
        &self,
        weight_error: &mut Option<String>,
        local_error: &mut Option<String>,
    ) -> Result<Option<Reported>, Failure> {
        let mut resp = self
            .client
            .request(self.method.clone(), &self.url)
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| {
                *local_error = super::local::local_cause(&e);
                classify(e)
            })?;
        let status = resp.status().as_u16();
        if !self.check.expect.iter().any(|r| r.contains(status)) {
            return Err(Failure::Status(status));
        }
        let mut reported = None;
        if let Some(WeightSource::Header(name)) = &self.check.weight_from
            && let Some(v) = resp.headers().get(name.as_str())
        {
            match v.to_str().ok().and_then(parse_weight) {
                Some(r) => reported = Some(r),
                None => *weight_error = Some(format!("unreadable weight in header {name}: {v:?}")),
            }
        }
        let want_body =
            self.check.body.is_some() || self.check.weight_from == Some(WeightSource::Body);
        if want_body {
            let cap = self.check.max_body;
            let mut body = Vec::with_capacity(cap.min(16 * 1024));
            // Bounded by `cap` bytes (and by the check timeout around us).
            while body.len() < cap {
                match resp.chunk().await {
                    Ok(Some(c)) => body.extend_from_slice(&c[..c.len().min(cap - body.len())]),
                    Ok(None) => break,
                    Err(e) => return Err(classify(e)),
                }
            }
            if let Some(needle) = &self.check.body
                && !contains(&body, needle.as_bytes())
            {
                return Err(Failure::BodyMismatch);
            }
            if self.check.weight_from == Some(WeightSource::Body) {
                match std::str::from_utf8(&body).ok().and_then(first_number) {
                    Some(r) => reported = Some(r),
                    None => *weight_error = Some("no weight number in the body".into()),
                }
            }
        }
        Ok(reported)
    }
}

/// Makes dropping `stream` send a reset instead of the FIN exchange (`SO_LINGER` 0), as
/// HAProxy does with its check connections: a check has nothing more to say once it has
/// its answer, and an orderly close would leave a TIME_WAIT socket for every check on
/// whichever side closed first (tens of thousands a minute at thousands of checks a
/// second) and cost two more packets. Failing to set it only costs that, so it is not
/// an error.
pub(super) fn reset_on_close(stream: &tokio::net::TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// A TCP connection to `addr`, from `source` when set.
pub(super) async fn connect(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
) -> std::io::Result<tokio::net::TcpStream> {
    let Some(src) = source else {
        return tokio::net::TcpStream::connect(addr).await;
    };
    let s = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    s.bind(SocketAddr::new(src, 0))?;
    s.connect(addr).await
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Reads `"5"` or `"50%"` (surrounding spaces allowed).
pub fn parse_weight(s: &str) -> Option<Reported> {
    let s = s.trim();
    let (num, pct) = match s.strip_suffix('%') {
        Some(n) => (n.trim_end(), true),
        None => (s, false),
    };
    if num.is_empty() || num.len() > 9 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u32 = num.parse().ok()?;
    Some(if pct {
        Reported::Percent(v.min(1000))
    } else {
        Reported::Weight(v.min(MAX_WEIGHT))
    })
}

/// The first run of digits in `s`, with a `%` right after it making it a percentage.
pub fn first_number(s: &str) -> Option<Reported> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let rest = &s[start..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let pct = rest[end..].starts_with('%');
    parse_weight(&rest[..end + usize::from(pct)])
}

/// Turns a reqwest error into the failure reason operators read.
fn classify(e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::Timeout;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = e.source();
    let mut text = e.to_string();
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return Failure::Tls(tls.to_string());
        }
        // io::Error nests (hyper wraps the connector's io::Error in another one), and its
        // `source()` skips the wrapped error itself: descend with `get_ref()`.
        let mut io = s.downcast_ref::<std::io::Error>();
        for _ in 0..8 {
            let Some(e) = io else { break };
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                return Failure::Refused;
            }
            let inner = e.get_ref();
            if let Some(tls) = inner.and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Failure::Tls(tls.to_string());
            }
            io = inner.and_then(|i| i.downcast_ref::<std::io::Error>());
        }
        src = s.source();
    }
    if e.is_connect() {
        Failure::Connect(text)
    } else {
        Failure::Http(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_parse() {
        assert_eq!(parse_weight(" 7 "), Some(Reported::Weight(7)));
        assert_eq!(parse_weight("50%"), Some(Reported::Percent(50)));
        assert_eq!(parse_weight("0"), Some(Reported::Weight(0)));
        assert_eq!(parse_weight("99999999"), Some(Reported::Weight(MAX_WEIGHT)));
        assert_eq!(parse_weight("-1"), None);
        assert_eq!(parse_weight("x"), None);
        assert_eq!(first_number("load weight=12\n"), Some(Reported::Weight(12)));
        assert_eq!(first_number("up 75% ready"), Some(Reported::Percent(75)));
        assert_eq!(first_number("none"), None);
    }

    #[test]
    fn substring() {
        assert!(contains(b"status: ok", b"ok"));
        assert!(!contains(b"status: o", b"ok"));
    }
}
