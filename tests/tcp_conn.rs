//! One DNS-over-TCP connection (`Conn::ready`: read, answer every pipelined message, one
//! write) over a real loopback connection: it allocates nothing per query once its
//! buffers have grown to its largest batch (messages split across reads included; a global
//! allocator counts per thread, as in udp_path_noalloc.rs), and a client that keeps its
//! socket full gets a bounded turn, then the rest in later turns, in order.

mod counting_alloc;
mod ops_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use counting_alloc::ALLOCS;
use roundel::dns::rrl_config::{CookieConfig, RrlConfig};
use roundel::dns::shield::Shield;
use roundel::dns::stats::{DnsStats, ZoneTable};
use roundel::dns::tcp_conn::{Conn, Shared};
use roundel::dns::tcp_conns::table;
use roundel::limits::slots::Admission;
use roundel::zone::Snapshot;

/// A query (`ops_support::query_bytes`) with its two-byte TCP length.
fn framed(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let m = ops_support::query_bytes(id, name, qtype);
    let mut f = (m.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(&m);
    f
}

#[test]
fn a_tcp_connection_allocates_nothing_per_query() {
    // The counter does count: an allocation is seen.
    let before = ALLOCS.with(|a| a.get());
    std::hint::black_box(vec![1u8; 8]);
    assert!(ALLOCS.with(|a| a.get()) > before);

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
    let snapshot = roundel::zone::load_snapshot(&dir, None).expect("shipped zones load");
    let shield = Shield::new(&RrlConfig::default(), &CookieConfig::default()).unwrap();
    let stats = DnsStats::default();
    let zones = stats.zones_now();

    let idle = Duration::from_secs(10);
    let (mut client, mut conn) = pair(idle);
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    // One batch: 40 queries of several kinds (answer, NXDOMAIN, referral, REFUSED).
    let names = [
        ("ns1.example.test.", 1),
        ("big.example.test.", 16),
        ("nx.example.test.", 1),
        ("www.ext.example.test.", 1),
        ("example.org.", 1),
    ];
    let batch: Vec<u8> = (0..40u16)
        .flat_map(|i| {
            let (n, t) = names[i as usize % names.len()];
            framed(i, n, t)
        })
        .collect();
    let split = batch.len() / 2 + 3; // inside a message
    let mut response = vec![0u8; 65_535];

    let mut round = |conn: &mut Conn| {
        for part in [&batch[..split], &batch[split..]] {
            client.write_all(part).unwrap();
            let sh = shared(&snapshot, &shield, &stats, &zones, idle);
            // Loopback delivers at once; further calls find nothing more (EAGAIN).
            for _ in 0..3 {
                conn.ready(true, &sh).expect("the connection stays open");
            }
        }
        for i in 0..40u16 {
            let mut len = [0u8; 2];
            client
                .read_exact(&mut len)
                .expect("an answer for every query");
            let m = &mut response[..u16::from_be_bytes(len) as usize];
            client.read_exact(m).unwrap();
            assert_eq!(u16::from_be_bytes([m[0], m[1]]), i, "answers in order");
        }
    };
    // Warm-up: the buffers grow to the batch.
    for _ in 0..3 {
        round(&mut conn);
    }
    let before = ALLOCS.with(|a| a.get());
    for _ in 0..100 {
        round(&mut conn);
    }
    let after = ALLOCS.with(|a| a.get());
    assert_eq!(after - before, 0, "allocations for 4,000 queries over TCP");
}

/// What the connection's thread passes to each `ready` call, now.
fn shared<'a>(
    snapshot: &'a Snapshot,
    shield: &'a Shield,
    stats: &'a DnsStats,
    zones: &'a ZoneTable,
    idle: Duration,
) -> Shared<'a> {
    Shared {
        snapshot,
        shield,
        stats,
        zones,
        now: Instant::now(),
        idle_timeout: idle,
        io_timeout: Duration::from_secs(1),
    }
}

/// A client socket and the server side as a `Conn`.
fn pair(idle: Duration) -> (TcpStream, Conn) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, peer) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let slots = table(8, 8);
    let Admission::Admitted { guard, .. } = slots.admit(Some(peer.ip())) else {
        panic!("not admitted");
    };
    let conn = Conn::new(
        mio::net::TcpStream::from_std(server),
        peer,
        guard,
        u32::MAX,
        Instant::now(),
        idle,
    );
    (client, conn)
}

#[test]
fn a_client_that_keeps_its_socket_full_gets_bounded_turns() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
    let snapshot: Snapshot = roundel::zone::load_snapshot(&dir, None).expect("shipped zones load");
    let shield = Shield::new(&RrlConfig::default(), &CookieConfig::default()).unwrap();
    let stats = DnsStats::default();
    let zones = stats.zones_now();
    let idle = Duration::from_secs(10);
    let (mut client, mut conn) = pair(idle);
    // 1,500 queries (about 50 KB) at once: more than a turn's reads take.
    const N: u16 = 1500;
    let all: Vec<u8> = (0..N)
        .flat_map(|i| framed(i, "ns1.example.test.", 1))
        .collect();
    client.write_all(&all).unwrap();
    client.set_nonblocking(true).unwrap();
    let sh = || shared(&snapshot, &shield, &stats, &zones, idle);
    conn.ready(true, &sh()).unwrap();
    assert!(conn.wants_turn(), "one turn took everything");
    // Further turns (as the thread gives them) answer the rest, in order.
    let mut got = Vec::new();
    let mut next = 0u16;
    let mut buf = [0u8; 65_536];
    let deadline = Instant::now() + Duration::from_secs(10);
    while next < N {
        assert!(
            Instant::now() < deadline,
            "{next} of {N} answers within 10 s"
        );
        conn.ready(false, &sh()).unwrap();
        match client.read(&mut buf) {
            Ok(0) => panic!("closed after {next} answers"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        while got.len() >= 2 && got.len() >= 2 + u16::from_be_bytes([got[0], got[1]]) as usize {
            let len = u16::from_be_bytes([got[0], got[1]]) as usize;
            assert_eq!(
                u16::from_be_bytes([got[2], got[3]]),
                next,
                "answers in order"
            );
            next += 1;
            got.drain(..2 + len);
        }
    }
    assert!(!conn.wants_turn(), "nothing left to read");
}
