//! `--listen` takes IPv6 addresses too: one server answers on [::1] and 127.0.0.1 at once,
//! over UDP and TCP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use roundel::server::{Listeners, ServeOptions, serve};

fn query_bytes() -> Vec<u8> {
    let mut m = Message::query();
    m.add_query(Query::query(
        Name::from_ascii("web.example.test.").unwrap(),
        RecordType::AAAA,
    ));
    m.to_vec().unwrap()
}

/// The AAAA addresses in the answer, or `None` if nothing came back in time.
fn ask(addr: SocketAddr, tcp: bool) -> Option<Vec<String>> {
    let bytes = query_bytes();
    let reply = if tcp {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        s.write_all(&(bytes.len() as u16).to_be_bytes()).ok()?;
        s.write_all(&bytes).ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).ok()?;
        buf
    } else {
        let local: SocketAddr = if addr.is_ipv6() {
            "[::1]:0".parse().unwrap()
        } else {
            "127.0.0.1:0".parse().unwrap()
        };
        let s = UdpSocket::bind(local).ok()?;
        s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
        s.send_to(&bytes, addr).ok()?;
        let mut buf = [0u8; 1500];
        let n = s.recv(&mut buf).ok()?;
        buf[..n].to_vec()
    };
    let m = Message::from_vec(&reply).ok()?;
    Some(
        m.answers
            .iter()
            .filter_map(|r| {
                if let RData::AAAA(a) = &r.data {
                    Some(a.to_string())
                } else {
                    None
                }
            })
            .collect(),
    )
}

#[test]
fn answers_on_ipv6_and_ipv4_side_by_side() {
    let listeners = Listeners::bind(&["[::1]:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()])
        .expect("bind [::1] and 127.0.0.1");
    let udp = listeners.udp_addrs();
    let tcp = listeners.tcp_addrs();
    assert!(udp[0].is_ipv6() && udp[1].is_ipv4());
    let zones = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve(ServeOptions::new(zones), listeners, async {
            let _ = rx.await;
        }))
    });
    for (addr, tcp) in [
        (udp[0], false),
        (tcp[0], true),
        (udp[1], false),
        (tcp[1], true),
    ] {
        // The server loads its zones before it reads a query: retry for a bounded moment.
        let answer = (0..20).find_map(|_| ask(addr, tcp));
        assert_eq!(
            answer,
            Some(vec!["2001:db8::10".to_string()]),
            "{addr} (tcp: {tcp})"
        );
    }
    tx.send(()).unwrap();
    server.join().unwrap().expect("clean shutdown");
}
