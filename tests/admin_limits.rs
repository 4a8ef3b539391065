//! The admin listener's limits against an in-process server on real sockets: the token is
//! checked before a body is read (a large declared body gets 401 at once, and memory stays
//! flat over 300 such requests), the Bearer scheme in any case, the header timeout
//! (slowloris), the idle timeout and the connection cap.

mod ops_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ops_support::*;
use roundel::limits::Limits;

const TOKEN: &str = "admin-limits-token";

fn server(tag: &str, limits: Limits) -> (TempDir, Server) {
    let zones = TempDir::new(tag);
    write_atomic(
        &zones.join("adm.test.toml"),
        &zone("adm.test.", "1", "[names.www]\nA = \"192.0.2.80\""),
    );
    let s = Server::start(
        zones.path(),
        Opts {
            token: Some(TOKEN.into()),
            limits: Some(limits),
            ..Opts::default()
        },
    );
    (zones, s)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads until the server closes or the header of a response is in; returns the status.
fn status_of(s: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    for _ in 0..1000 {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no response within the bound: {e}"),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    text.split(' ').nth(1)?.parse().ok()
}

fn vm_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn unauthenticated_large_bodies_are_refused_before_they_are_read() {
    let (_z, s) = server("admin-body", Limits::default());
    // One request: 100 MB declared, nothing sent: 401 at once, not a wait for the body.
    let mut c = connect(s.admin);
    let start = Instant::now();
    write!(
        c,
        "POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
    )
    .unwrap();
    assert_eq!(status_of(&mut c), Some(401));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    // 300 requests, in batches under the connection cap, each declaring 10 MB and sending
    // 256 KiB of it: every one refused, memory flat.
    let chunk = vec![b'x'; 256 * 1024];
    let before = vm_rss_kib();
    for _ in 0..6 {
        let mut batch: Vec<TcpStream> = (0..50).map(|_| connect(s.admin)).collect();
        for c in &mut batch {
            write!(
                c,
                "PUT /api/v1/query-log HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
            )
            .unwrap();
            c.set_write_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            // The server may close before taking it all.
            let _ = c.write_all(&chunk);
        }
        for c in &mut batch {
            assert_eq!(status_of(c), Some(401));
        }
    }
    let grown = vm_rss_kib().saturating_sub(before);
    assert!(
        grown < 40 * 1024,
        "RSS grew by {grown} KiB over 300 refused requests"
    );
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let (_z, s) = server("admin-bearer", Limits::default());
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let mut c = connect(s.admin);
        write!(
            c,
            "POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: {scheme} {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        assert_eq!(status_of(&mut c), Some(200), "scheme {scheme}");
    }
    let mut c = connect(s.admin);
    write!(
        c,
        "POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: bearer wrong\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    assert_eq!(status_of(&mut c), Some(401));
}

fn closed_within(c: &mut TcpStream, bound: Duration) -> Duration {
    c.set_read_timeout(Some(bound)).unwrap();
    let start = Instant::now();
    let mut b = [0u8; 1024];
    loop {
        match c.read(&mut b) {
            Ok(0) => return start.elapsed(),
            // A 408 may come before the close.
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!("not closed within {bound:?}: {e}"),
        }
    }
}

#[test]
fn slow_headers_and_idle_connections_are_closed() {
    let limits = Limits {
        admin_header_timeout: Duration::from_millis(500),
        admin_idle_timeout: Duration::from_millis(1500),
        ..Limits::default()
    };
    let (_z, s) = server("admin-slow", limits);
    // Slowloris: a header line every 200 ms, never finished.
    let mut c = connect(s.admin);
    c.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let start = Instant::now();
    let mut closed = false;
    for i in 0..40 {
        std::thread::sleep(Duration::from_millis(200));
        if write!(c, "X-Slow-{i}: y\r\n").is_err() {
            closed = true;
            break;
        }
        c.set_nonblocking(true).unwrap();
        let mut b = [0u8; 512];
        let r = c.read(&mut b);
        c.set_nonblocking(false).unwrap();
        if r.is_ok() {
            closed = true;
            break;
        }
    }
    assert!(closed, "a header trickled for 8 s was not cut off");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    // A kept-alive connection after a complete request: closed after the idle timeout.
    let mut c = connect(s.admin);
    c.write_all(b"GET /api/v1/query-log HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(status_of(&mut c), Some(200));
    let t = closed_within(&mut c, Duration::from_secs(5));
    assert!(t < Duration::from_secs(4), "idle close after {t:?}");
}

#[test]
fn the_connection_cap_refuses_new_connections_but_not_forever() {
    let limits = Limits {
        admin_connections: 8,
        ..Limits::default()
    };
    let (_z, s) = server("admin-cap", limits);
    let held: Vec<TcpStream> = (0..8).map(|_| connect(s.admin)).collect();
    // Accepted in order: wait until the listener has taken all eight.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = connect(s.admin);
        c.write_all(b"GET /api/v1/query-log HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        if status_of(&mut c).is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a ninth connection was still served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if http_get_blocking(s.admin, "/api/v1/query-log").is_some_and(|(st, _)| st == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "slots not freed within 5 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}
