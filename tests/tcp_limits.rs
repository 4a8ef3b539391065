//! DNS over TCP with its caps, against an in-process server on real sockets: pipelined
//! queries answered in order, the idle and I/O timeouts, the per-connection query cap (and
//! the graceful close after it), the per-address cap, and a malformed QR=1 message left
//! unanswered.

mod ops_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ops_support::*;
use roundel::limits::Limits;

fn server(tag: &str, limits: Limits) -> (TempDir, Server) {
    let zones = TempDir::new(tag);
    write_atomic(
        &zones.join("tcp.test.toml"),
        &zone("tcp.test.", "1", "[names.www]\nA = \"192.0.2.80\""),
    );
    let s = Server::start(
        zones.path(),
        Opts {
            limits: Some(limits),
            ..Opts::default()
        },
    );
    (zones, s)
}

fn framed(id: u16) -> Vec<u8> {
    let q = query_bytes(id, "www.tcp.test.", A);
    let mut f = (q.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(&q);
    f
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads one framed response; `None` when the server closed the connection.
fn read_response(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e)
            if e.kind() == ErrorKind::UnexpectedEof || e.kind() == ErrorKind::ConnectionReset =>
        {
            return None;
        }
        Err(e) => panic!("read failed (no answer and no close within the bound): {e}"),
    }
    let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut m).unwrap();
    Some(m)
}

/// Waits (bounded by the socket's read timeout) for the server to close; returns when.
fn closed_after(s: &mut TcpStream, start: Instant) -> Duration {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => start.elapsed(),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => start.elapsed(),
        other => panic!("expected the server to close, got {other:?}"),
    }
}

fn id(m: &[u8]) -> u16 {
    u16::from_be_bytes([m[0], m[1]])
}

#[test]
fn pipelined_queries_are_answered_in_order() {
    let (_z, s) = server("tcp-pipeline", Limits::default());
    let mut c = connect(s.dns);
    let all: Vec<u8> = (1..=20u16).flat_map(framed).collect();
    c.write_all(&all).unwrap();
    for i in 1..=20u16 {
        let m = read_response(&mut c).expect("an answer");
        assert_eq!(id(&m), i, "answers in the order of the queries");
        assert_eq!(m[3] & 0x0F, 0, "NOERROR");
    }
}

/// Reads are batched, so messages split anywhere (inside the length prefix, inside the
/// message, several in one segment) must still be answered, in order.
#[test]
fn queries_split_anywhere_are_answered_in_order() {
    let (_z, s) = server("tcp-split", Limits::default());
    let mut c = connect(s.dns);
    c.set_nodelay(true).unwrap();
    let all: Vec<u8> = (1..=30u16).flat_map(framed).collect();
    let mut at = 0;
    for size in [1usize, 2, 3, 5, 7, 11, 13, 64].iter().cycle() {
        if at == all.len() {
            break;
        }
        let end = (at + size).min(all.len());
        c.write_all(&all[at..end]).unwrap();
        c.flush().unwrap();
        at = end;
    }
    for i in 1..=30u16 {
        let m = read_response(&mut c).expect("an answer");
        assert_eq!(id(&m), i, "answers in the order of the queries");
    }
}

/// The I/O timeout bounds a whole message, not each read: a client trickling one byte at a
/// time is closed when the time is up.
#[test]
fn a_trickled_message_is_closed_after_the_io_timeout() {
    let limits = Limits {
        tcp_idle_timeout: Duration::from_secs(5),
        tcp_io_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (_z, s) = server("tcp-trickle", limits);
    let mut c = connect(s.dns);
    let f = framed(9);
    let start = Instant::now();
    let mut closed = false;
    // A byte every 50 ms: each read is well inside the timeout, the message is not.
    for b in &f[..f.len() - 1] {
        if c.write_all(std::slice::from_ref(b)).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if start.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let t = if closed {
        start.elapsed()
    } else {
        closed_after(&mut c, start)
    };
    assert!(t < Duration::from_millis(1500), "closed after {t:?}");
}

#[test]
fn idle_and_io_timeouts_close_connections() {
    let limits = Limits {
        tcp_idle_timeout: Duration::from_millis(400),
        tcp_io_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (_z, s) = server("tcp-timeouts", limits);
    // Idle from the start.
    let mut c = connect(s.dns);
    let t = closed_after(&mut c, Instant::now());
    assert!(
        t >= Duration::from_millis(350) && t < Duration::from_secs(3),
        "idle close after {t:?}"
    );
    // Idle after an answer.
    let mut c = connect(s.dns);
    c.write_all(&framed(7)).unwrap();
    assert_eq!(id(&read_response(&mut c).unwrap()), 7);
    let t = closed_after(&mut c, Instant::now());
    assert!(
        t >= Duration::from_millis(350) && t < Duration::from_secs(3),
        "idle close after {t:?}"
    );
    // Half a message, then nothing: the I/O timeout, shorter than the idle one.
    let mut c = connect(s.dns);
    let f = framed(8);
    c.write_all(&f[..5]).unwrap();
    let t = closed_after(&mut c, Instant::now());
    assert!(
        t >= Duration::from_millis(250) && t < Duration::from_millis(390),
        "I/O close after {t:?}"
    );
}

#[test]
fn the_query_cap_closes_after_the_last_answer() {
    let limits = Limits {
        tcp_queries_per_connection: 3,
        ..Limits::default()
    };
    let (_z, s) = server("tcp-query-cap", limits);
    let mut c = connect(s.dns);
    let all: Vec<u8> = (1..=5u16).flat_map(framed).collect();
    c.write_all(&all).unwrap();
    for i in 1..=3u16 {
        assert_eq!(id(&read_response(&mut c).expect("an answer")), i);
    }
    assert!(read_response(&mut c).is_none(), "closed after 3 answers");
}

#[test]
fn past_the_query_cap_the_server_closes_gracefully_not_with_a_reset() {
    let limits = Limits {
        tcp_queries_per_connection: 3,
        tcp_io_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let (_z, s) = server("tcp-cap-drain", limits);
    let mut c = connect(s.dns);
    // Three queries, then far more pipelined than one read takes (about 66 KB): still in
    // the server's receive queue, unread, when the cap is reached.
    let all: Vec<u8> = (1..=2000u16).flat_map(framed).collect();
    c.write_all(&all).unwrap();
    for i in 1..=3u16 {
        assert_eq!(id(&read_response(&mut c).expect("an answer")), i);
    }
    let mut b = [0u8; 64];
    assert_eq!(c.read(&mut b).expect("the end of the stream"), 0);
    // The server reads on until the client closes: a reset (a close with unread data)
    // would fail this write or the read after it.
    c.write_all(&framed(9))
        .expect("the server still reads after its end of stream");
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.read(&mut b).expect("a graceful close, not a reset"), 0);
}

#[test]
fn the_per_address_cap_refuses_only_that_address() {
    let limits = Limits {
        tcp_clients_per_address: 4,
        ..Limits::default()
    };
    let (_z, s) = server("tcp-per-address", limits);
    let mut held: Vec<TcpStream> = (0..4).map(|_| connect(s.dns)).collect();
    // Each held connection is served (and so admitted).
    for (i, c) in held.iter_mut().enumerate() {
        c.write_all(&framed(i as u16)).unwrap();
        assert_eq!(id(&read_response(c).unwrap()), i as u16);
    }
    // The fifth from 127.0.0.1 is closed without an answer.
    let mut fifth = connect(s.dns);
    let _ = fifth.write_all(&framed(99));
    assert!(
        read_response(&mut fifth).is_none(),
        "fifth connection refused"
    );
    // Another address is served.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.connect_timeout(&s.dns.into(), Duration::from_secs(2))
        .unwrap();
    let mut other: TcpStream = sock.into();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    other.write_all(&framed(100)).unwrap();
    assert_eq!(id(&read_response(&mut other).unwrap()), 100);
    // A slot freed is a slot again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = connect(s.dns);
        let _ = c.write_all(&framed(101));
        if let Some(m) = read_response(&mut c) {
            assert_eq!(id(&m), 101);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed slot was not reused within 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_malformed_response_gets_no_reply_over_tcp() {
    let (_z, s) = server("tcp-qr", Limits::default());
    let mut c = connect(s.dns);
    // QR=1 and garbage after the header.
    let mut m = vec![0x12, 0x34, 0x80, 0x00, 0, 1, 0, 1, 0, 1, 0, 1];
    m.extend((0..30u8).map(|i| i.wrapping_mul(37)));
    let mut f = (m.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(&m);
    c.write_all(&f).unwrap();
    // Then a good query on the same connection: its answer is the first thing back.
    c.write_all(&framed(42)).unwrap();
    assert_eq!(id(&read_response(&mut c).unwrap()), 42);
}

/// Stopping the server closes the connections its TCP threads hold (the threads end with
/// them), well before the idle timeout would.
#[test]
fn stopping_the_server_closes_open_connections() {
    let (_z, s) = server("tcp-stop", Limits::default());
    let mut held: Vec<TcpStream> = (0..4).map(|_| connect(s.dns)).collect();
    for (i, c) in held.iter_mut().enumerate() {
        c.write_all(&framed(i as u16)).unwrap();
        assert_eq!(id(&read_response(c).unwrap()), i as u16);
    }
    let start = Instant::now();
    drop(s);
    for c in &mut held {
        let t = closed_after(c, start);
        assert!(t < Duration::from_secs(3), "closed {t:?} after the stop");
    }
}
