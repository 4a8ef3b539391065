//! The admin listener's limits against an in-process server on real sockets: the token is
//! checked before a body is read (a large declared body gets 401 at once, and memory stays
//! flat over 300 such requests), the Bearer scheme in any case, the header timeout
//! (slowloris), the idle timeout, and the connection cap (the idle longest makes room).

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
        "PUT /api/v1/query-log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
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

/// Whether the server closes `c` within `bound` (it sends nothing unasked).
fn is_closed(c: &mut TcpStream, bound: Duration) -> bool {
    c.set_read_timeout(Some(bound)).unwrap();
    let mut b = [0u8; 64];
    match c.read(&mut b) {
        Ok(0) => true,
        Ok(n) => panic!("an idle connection got {n} bytes"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("{e}"),
    }
}

fn metric(admin: SocketAddr, name: &str) -> f64 {
    let (_, text) = http_get_blocking(admin, "/metrics").expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in metrics"))
}

#[test]
fn at_the_connection_cap_the_longest_idle_connection_makes_room() {
    // The shipped cap: idle connections beyond it must not lock the operator out.
    let cap = Limits::default().admin_connections as usize;
    const EXTRA: usize = 8;
    // Timeouts far beyond the test's length: only the cap closes connections here.
    let limits = Limits {
        admin_header_timeout: Duration::from_secs(120),
        admin_idle_timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    let (_z, s) = server("admin-cap", limits);
    // Connected one after the other: the kernel hands them to accept() in this order.
    let mut held: Vec<TcpStream> = (0..cap + EXTRA).map(|_| connect(s.admin)).collect();
    // The first EXTRA (idle longest) were evicted for the last EXTRA; the rest stay open.
    for (i, c) in held.iter_mut().enumerate().take(EXTRA) {
        assert!(
            is_closed(c, Duration::from_secs(5)),
            "idle connection {i} (of the oldest) not closed within 5 s at the cap"
        );
    }
    for (i, c) in held.iter_mut().enumerate().skip(EXTRA) {
        assert!(
            !is_closed(c, Duration::from_millis(1)),
            "connection {i} closed, but older idle ones were there"
        );
    }
    // The cap is full of idle connections: real requests, each on a new connection, are
    // answered within a bound, each at the cost of the oldest idle connection.
    for round in 0..10 {
        let start = Instant::now();
        let mut c = connect(s.admin);
        c.write_all(b"GET /api/v1/query-log HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(status_of(&mut c), Some(200), "request {round} at the cap");
        let took = start.elapsed();
        assert!(took < Duration::from_secs(1), "request {round}: {took:?}");
        assert!(
            is_closed(&mut held[EXTRA + round], Duration::from_secs(5)),
            "request {round} did not evict the oldest idle connection"
        );
        // Kept alive, it is now among the connections at the cap (the newest).
        held.push(c);
    }
    assert!(metric(s.admin, "roundel_admin_connections_evicted_total") >= (EXTRA + 10) as f64);
}
