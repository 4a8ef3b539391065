//! The plain-HTTP check, without an HTTP client library: the request bytes are built once
//! when the probe is created, and each check is one TCP connect, one write and reads into
//! one buffer, with the status line and headers parsed by `httparse`.
//!
//! A general client (reqwest over hyper) costs about 73,000 instructions per check, most
//! of it spent on what a health check never uses: the URL parsed three times, a redirect
//! policy, a connection pool and a dispatcher task (docs/performance.md). This path
//! behaves as that client did for a check: one fresh connection per check (a pooled one
//! would hide a server that no longer accepts new ones; `reuse_connection = true` keeps
//! one anyway, for operators who check many nodes, as Envoy does by default),
//! `Connection: close` (unless reused), redirects
//! not followed, at most `max_body` body bytes read (RFC 9112 section 6 framing: chunked,
//! `Content-Length` or until close), and failures classified the same way. HTTPS checks
//! keep the client library ([`super::probe::HttpProber`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::header::{HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::keep::{KeptConnections, Reuse};
use super::probe::{connect, contains, first_number, parse_weight};
use crate::node::{Failure, Reported};
use crate::pool::{HttpCheck, ProbeTarget, StatusRange, WeightSource};

/// Most bytes of status line and headers read, as hyper's client allows by default
/// (its `max_buf_size`, ~400 KiB); a backend sending more fails the check.
pub const MAX_HEAD: usize = 400 * 1024;

/// Most header fields parsed in a response (hyper's client default).
const MAX_HEADERS: usize = 100;

/// First read buffer size: a health answer's head and a short body fit in it.
const FIRST_READ: usize = 1024;

/// The `User-Agent` of every check (the HTTPS client sends the same).
pub const USER_AGENT: &str = concat!("roundel-health/", env!("CARGO_PKG_VERSION"));

/// A plain-HTTP check bound to one target.
pub struct PlainHttp {
    addr: SocketAddr,
    source: Option<IpAddr>,
    /// The whole request, written as is by every check.
    request: Box<[u8]>,
    /// HEAD: the response has no body whatever its headers say (RFC 9110 section 9.3.2).
    head: bool,
    expect: Box<[StatusRange]>,
    body: Option<Box<[u8]>>,
    max_body: usize,
    weight_from: Option<WeightSource>,
    /// With `reuse_connection = true`: the connection kept between checks.
    reuse: Option<Reuse>,
}

impl PlainHttp {
    /// Builds the request for `check` against `target`, connecting from `source` when set;
    /// a connection kept between checks (`reuse_connection`) takes a place in `kept`.
    pub fn new(
        check: &HttpCheck,
        target: &ProbeTarget,
        source: Option<IpAddr>,
        kept: &Arc<KeptConnections>,
    ) -> Result<Self, String> {
        let addr = SocketAddr::new(target.addr, target.port);
        // Validated as a token by the config loader; checked again as the client did.
        let method =
            reqwest::Method::from_bytes(check.method.as_bytes()).map_err(|e| e.to_string())?;
        // Host header: the node's check_host, else the check's host, else the address
        // (with the port unless it is the default one, as a URL client writes it).
        let host = match target.host.as_deref().or(check.host.as_deref()) {
            Some(h) => h.to_owned(),
            None if target.port == 80 => match target.addr {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            },
            None => addr.to_string(),
        };
        let mut fields: Vec<(String, String)> = vec![("host".into(), host)];
        if !check.reuse_connection {
            // Tell the server not to keep the connection: it is not reused anyway. With
            // reuse, nothing: HTTP/1.1 keeps connections by default (RFC 9112 section 9.3).
            fields.push(("connection".into(), "close".into()));
        }
        fields.push(("user-agent".into(), USER_AGENT.into()));
        fields.push(("accept".into(), "*/*".into()));
        for (n, v) in &check.headers {
            // Validated by the config loader; checked again as the client did.
            HeaderName::from_bytes(n.as_bytes()).map_err(|e| e.to_string())?;
            match fields.iter_mut().find(|(f, _)| f.eq_ignore_ascii_case(n)) {
                Some(f) => f.1.clone_from(v),
                None => fields.push((n.clone(), v.clone())),
            }
        }
        let mut request = format!("{method} {} HTTP/1.1\r\n", check.path);
        for (n, v) in &fields {
            HeaderValue::from_str(v).map_err(|e| e.to_string())?;
            request.push_str(n);
            request.push_str(": ");
            request.push_str(v);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        Ok(Self {
            addr,
            source,
            request: request.into_bytes().into_boxed_slice(),
            head: method == reqwest::Method::HEAD,
            expect: check.expect.clone().into_boxed_slice(),
            body: check.body.as_ref().map(|b| b.as_bytes().into()),
            max_body: check.max_body,
            weight_from: check.weight_from.clone(),
            reuse: check.reuse_connection.then(|| Reuse::new(kept)),
        })
    }

    /// The request every check writes.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// One check (the caller bounds it by the timeout). With `reuse_connection`, on the
    /// connection kept from the previous check if there is one; when that connection
    /// turns out closed by the backend before any response byte (an idle connection
    /// closed, RFC 9112 section 9.3.1), once more on a fresh connection.
    pub async fn run(
        &self,
        weight_error: &mut Option<String>,
        local_error: &mut Option<String>,
    ) -> Result<Option<Reported>, Failure> {
        if let Some(mut kept) = self.reuse.as_ref().and_then(Reuse::take) {
            let (result, after) = self
                .exchange(&mut kept.stream, true, weight_error, local_error)
                .await;
            match after {
                After::Retry => {
                    // Nothing was learnt about the backend: start over on a fresh connection.
                    *weight_error = None;
                    *local_error = None;
                }
                After::Keep if result.is_ok() => {
                    if let Some(r) = &self.reuse {
                        r.put(kept);
                    }
                    return result;
                }
                _ => return result,
            }
        }
        let mut stream = match connect(self.addr, self.source).await {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(Failure::Refused);
            }
            Err(e) => {
                if super::local::is_local(&e) {
                    *local_error = Some(e.to_string());
                }
                return Err(Failure::Connect(format!("tcp connect error: {e}")));
            }
        };
        // Every way out of this function drops the stream unless it is kept: with a reset
        // (see there).
        super::probe::reset_on_close(&stream);
        let (result, after) = self
            .exchange(&mut stream, false, weight_error, local_error)
            .await;
        if let (After::Keep, Ok(_), Some(r)) = (after, &result, &self.reuse) {
            r.keep(stream);
        }
        result
    }

    /// Writes the request on `stream` and reads the response; says whether the connection
    /// may carry the next check. `reused`: the connection served an earlier check, so a
    /// failure before any response byte asks for a retry rather than failing.
    async fn exchange(
        &self,
        stream: &mut tokio::net::TcpStream,
        reused: bool,
        weight_error: &mut Option<String>,
        local_error: &mut Option<String>,
    ) -> (Result<Option<Reported>, Failure>, After) {
        let io = |e: std::io::Error, local_error: &mut Option<String>| {
            if super::local::is_local(&e) {
                *local_error = Some(e.to_string());
            }
            Failure::Http(format!("connection error: {e}"))
        };
        if let Err(e) = stream.write_all(&self.request).await {
            let after = if reused { After::Retry } else { After::Close };
            return (Err(io(e, local_error)), after);
        }
        let mut buf = Vec::with_capacity(FIRST_READ);
        let mut received = false;
        // Read until the head is complete; skip interim (1xx) responses as a client does.
        // After an interim response, what is already buffered is parsed before reading.
        let mut parse_first = false;
        let head = loop {
            let n = if parse_first {
                parse_first = false;
                buf.len()
            } else {
                if buf.len() == buf.capacity() {
                    if buf.len() >= MAX_HEAD {
                        return (
                            Err(Failure::Http("response head too large".into())),
                            After::Close,
                        );
                    }
                    buf.reserve(buf.len().min(MAX_HEAD - buf.len()));
                }
                match stream.read_buf(&mut buf).await {
                    Ok(n) => n,
                    Err(e) if reused && !received => {
                        return (Err(io(e, local_error)), After::Retry);
                    }
                    Err(e) => return (Err(io(e, local_error)), After::Close),
                }
            };
            if n == 0 && reused && !received {
                return (
                    Err(Failure::Http("kept connection closed by the server".into())),
                    After::Retry,
                );
            }
            received |= n > 0;
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = resp.code.unwrap_or(0);
                    if (100..200).contains(&status) && status != 101 {
                        buf.drain(..len);
                        parse_first = !buf.is_empty();
                        continue;
                    }
                    let framing = match self.framing(status, resp.headers) {
                        Ok(f) => f,
                        Err(f) => return (Err(f), After::Close),
                    };
                    // HTTP/1.0 closes unless asked not to; `Connection: close` closes
                    // (RFC 9112 section 9.3). Neither is kept.
                    let closes =
                        resp.version != Some(1) || status == 101 || says_close(resp.headers);
                    let weight = self.header_weight(resp.headers);
                    break (status, len, framing, weight, closes);
                }
                Ok(httparse::Status::Partial) if n == 0 => {
                    return (
                        Err(Failure::Http(
                            "connection closed before message completed".into(),
                        )),
                        After::Close,
                    );
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => {
                    return (
                        Err(Failure::Http(format!("invalid HTTP response: {e}"))),
                        After::Close,
                    );
                }
            }
        };
        let (status, head_len, framing, weight, closes) = head;
        if !self.expect.iter().any(|r| r.contains(status)) {
            return (Err(Failure::Status(status)), After::Close);
        }
        let mut reported = None;
        match weight {
            Some(Ok(r)) => reported = Some(r),
            Some(Err(e)) => *weight_error = Some(e),
            None => {}
        }
        let want_body = self.body.is_some() || self.weight_from == Some(WeightSource::Body);
        // A connection is kept only once the whole response is read, by its framing.
        let keep = self.reuse.is_some() && !closes && !matches!(framing, Framing::Close);
        if !want_body && !keep {
            return (Ok(reported), After::Close);
        }
        buf.drain(..head_len);
        let (body, complete) = match self
            .read_body(stream, buf, framing, keep, local_error)
            .await
        {
            Ok(b) => b,
            Err(f) => return (Err(f), After::Close),
        };
        let after = if keep && complete {
            After::Keep
        } else {
            After::Close
        };
        if let Some(needle) = &self.body
            && !contains(&body, needle)
        {
            return (Err(Failure::BodyMismatch), After::Close);
        }
        if self.weight_from == Some(WeightSource::Body) {
            match std::str::from_utf8(&body).ok().and_then(first_number) {
                Some(r) => reported = Some(r),
                None => *weight_error = Some("no weight number in the body".into()),
            }
        }
        (Ok(reported), after)
    }

    /// How the body of a response with `status` and `headers` ends (RFC 9112 section 6.3).
    fn framing(&self, status: u16, headers: &[httparse::Header<'_>]) -> Result<Framing, Failure> {
        if self.head || status == 204 || status == 304 {
            return Ok(Framing::Length(0));
        }
        let mut framing = Framing::Close;
        for h in headers {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                // Chunked is the last coding when present; anything else reads to close.
                let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
                if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    return Ok(Framing::Chunked);
                }
                return Ok(Framing::Close);
            }
            if h.name.eq_ignore_ascii_case("content-length") {
                let len = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| Failure::Http("invalid content-length".into()))?;
                framing = Framing::Length(len);
            }
        }
        Ok(framing)
    }

    /// The weight in the configured header, if the check reads one and the header is there.
    fn header_weight(&self, headers: &[httparse::Header<'_>]) -> Option<Result<Reported, String>> {
        let Some(WeightSource::Header(name)) = &self.weight_from else {
            return None;
        };
        let h = headers.iter().find(|h| h.name.eq_ignore_ascii_case(name))?;
        let text = std::str::from_utf8(h.value).ok();
        Some(
            text.filter(|t| t.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
                .and_then(parse_weight)
                .ok_or_else(|| {
                    format!(
                        "unreadable weight in header {name}: {:?}",
                        String::from_utf8_lossy(h.value)
                    )
                }),
        )
    }

    /// The first `max_body` bytes of the body; `buf` holds what was read past the head.
    /// Also whether the response ended by its framing within `max_body`, with nothing
    /// after it: only then can the connection carry another request. `to_end`: the caller
    /// wants that, so the end of a chunked body (the empty trailer section) is read too.
    async fn read_body(
        &self,
        stream: &mut tokio::net::TcpStream,
        mut buf: Vec<u8>,
        framing: Framing,
        to_end: bool,
        local_error: &mut Option<String>,
    ) -> Result<(Vec<u8>, bool), Failure> {
        let cap = self.max_body;
        let mut body = Vec::new();
        let mut chunks = Dechunk::default();
        let mut eof = false;
        let mut stray = false;
        loop {
            // Move what is buffered into the body, decoding chunked framing.
            let done = match framing {
                Framing::Length(len) => {
                    let want = usize::try_from(len).unwrap_or(usize::MAX);
                    let take = buf.len().min(want.saturating_sub(body.len()));
                    body.extend_from_slice(&buf[..take]);
                    stray |= buf.len() > take;
                    buf.clear();
                    body.len() >= want
                }
                Framing::Close => {
                    body.extend_from_slice(&buf);
                    buf.clear();
                    eof
                }
                Framing::Chunked => chunks.feed(&mut buf, &mut body)?,
            };
            if done {
                let mut complete = !stray && !matches!(framing, Framing::Close);
                if to_end && matches!(framing, Framing::Chunked) {
                    // The last chunk is followed by trailers, if any, and a CRLF (RFC 9112
                    // section 7.1): keep the connection only without trailers.
                    while buf.len() < 2 && read_more(stream, &mut buf, local_error).await? > 0 {}
                    complete &= buf == b"\r\n";
                }
                complete &= body.len() <= cap;
                body.truncate(cap);
                return Ok((body, complete));
            }
            if body.len() >= cap {
                body.truncate(cap);
                return Ok((body, false));
            }
            if eof {
                return Err(Failure::Http(
                    "connection closed before the whole body was read".into(),
                ));
            }
            buf.reserve(FIRST_READ.max(cap.saturating_sub(body.len()).min(16 * 1024)));
            eof = read_more(stream, &mut buf, local_error).await? == 0;
        }
    }
}

/// One read of a body into `buf`.
async fn read_more(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    local_error: &mut Option<String>,
) -> Result<usize, Failure> {
    stream.read_buf(buf).await.map_err(|e| {
        if super::local::is_local(&e) {
            *local_error = Some(e.to_string());
        }
        Failure::Http(format!("error reading a body from connection: {e}"))
    })
}

/// What an exchange leaves of its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// The response was read to its end: the connection can carry the next check.
    Keep,
    /// Close it.
    Close,
    /// A kept connection failed before any response byte: the server had closed it while
    /// idle, so the check is made again on a fresh connection (RFC 9112 section 9.3.1).
    Retry,
}

/// Whether the `Connection` header fields hold the `close` option.
fn says_close(headers: &[httparse::Header<'_>]) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .any(|o| o.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// How a response body ends.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// After this many bytes.
    Length(u64),
    /// At the last chunk.
    Chunked,
    /// When the server closes the connection.
    Close,
}

/// Incremental decoder of the chunked transfer coding (RFC 9112 section 7.1).
#[derive(Default)]
struct Dechunk {
    /// Data bytes left in the current chunk, plus its trailing CRLF pending.
    left: u64,
    crlf: bool,
}

impl Dechunk {
    /// Moves the data of complete parts of `buf` into `body`, leaving any incomplete
    /// chunk-size line in `buf`. `true` at the last chunk.
    fn feed(&mut self, buf: &mut Vec<u8>, body: &mut Vec<u8>) -> Result<bool, Failure> {
        let mut at = 0;
        let result = loop {
            if self.left > 0 {
                let take = (buf.len() - at).min(usize::try_from(self.left).unwrap_or(usize::MAX));
                body.extend_from_slice(&buf[at..at + take]);
                at += take;
                self.left -= take as u64;
                if self.left > 0 {
                    break Ok(false);
                }
                self.crlf = true;
            }
            if self.crlf {
                if buf.len() - at < 2 {
                    break Ok(false);
                }
                if &buf[at..at + 2] != b"\r\n" {
                    break Err(Failure::Http("invalid chunk end".into()));
                }
                at += 2;
                self.crlf = false;
            }
            match httparse::parse_chunk_size(&buf[at..]) {
                Ok(httparse::Status::Complete((n, size))) => {
                    at += n;
                    if size == 0 {
                        // Trailers are not read: the body is complete.
                        break Ok(true);
                    }
                    self.left = size;
                }
                Ok(httparse::Status::Partial) => break Ok(false),
                Err(_) => break Err(Failure::Http("invalid chunk size line".into())),
            }
        };
        buf.drain(..at);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_in_any_split() {
        let wire = b"4\r\nstat\r\n6;ext=1\r\nus: ok\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let (mut d, mut body, mut buf) = (Dechunk::default(), Vec::new(), Vec::new());
            buf.extend_from_slice(&wire[..split]);
            // Done at the last-chunk line: the final CRLF and trailers are not waited for.
            let done = d.feed(&mut buf, &mut body).unwrap();
            assert_eq!(done, split >= wire.len() - 2, "{split}");
            if !done {
                buf.extend_from_slice(&wire[split..]);
                assert!(d.feed(&mut buf, &mut body).unwrap(), "{split}");
            }
            assert_eq!(body, b"status: ok", "{split}");
        }
        let mut buf = b"zz\r\n".to_vec();
        assert!(Dechunk::default().feed(&mut buf, &mut Vec::new()).is_err());
    }
}
