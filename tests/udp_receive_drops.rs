//! Queries the kernel drops because a UDP worker fell behind are counted, and the worker's
//! receive buffer is what `[limits] udp_receive_buffer` asks for: 1 MiB by default, the
//! system's default with 0.
//!
//! The real binary, with a 64 KiB buffer (the smallest accepted): its socket's buffer is
//! read back with `ss`. The process is then stopped (SIGSTOP), as a machine that takes the
//! CPU away would stop it, while a client sends far more queries than the buffer holds;
//! after SIGCONT, `roundel_dns_udp_receive_drops_total` equals the drops the kernel counts
//! at the socket (`ss`'s `d`), and the server answers again.

mod ops_support;

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use ops_support::daemon::Daemon;
use ops_support::*;

/// The `skmem` fields `rb` (receive buffer) and `d` (drops) of every UDP socket bound to
/// `port`, from `ss -ulmn`.
fn skmem(port: u16) -> Vec<(u64, u64)> {
    let out = Command::new("ss")
        .args(["-ulmn", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |mem: &str, name: &str| -> u64 {
        mem.split(',')
            .find_map(|f| f.strip_prefix(name)?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {mem}"))
    };
    text.lines()
        .filter_map(|l| {
            let mem = l.trim().strip_prefix("skmem:(")?.strip_suffix(')')?;
            Some((field(mem, "rb"), field(mem, "d")))
        })
        .collect()
}

/// The value of `series` in a scrape, which must have it.
fn metric(d: &Daemon, series: &str) -> u64 {
    metric_value(d.admin.expect("admin listener"), series)
        .unwrap_or_else(|| panic!("no {series} in the metrics"))
}

/// `net.core.{name}`.
fn sysctl(name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A zones directory with one zone, `www.ORIGIN A 192.0.2.1`.
fn zones(tag: &str, origin: &str) -> TempDir {
    let dir = TempDir::new(tag);
    write_atomic(
        &dir.join(&format!("{origin}toml")),
        &zone(origin, "1", "[names.www]\nA = \"192.0.2.1\"\n"),
    );
    dir
}

/// Starts the binary on `zones` with `config` written to a file beside, not in, the zones
/// directory (every file there is read as a zone), and `extra` arguments. The directory of
/// the file is returned with the server, to live as long.
fn serve(zones: &TempDir, config: &str, extra: &[&str]) -> (Daemon, TempDir) {
    let etc = TempDir::new("udp-rcvbuf-config");
    write_atomic(&etc.join("roundel.toml"), config);
    let path = etc.join("roundel.toml");
    let mut args = vec![
        "--zones",
        zones.path().to_str().unwrap(),
        "--config",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (Daemon::start(&args).unwrap(), etc)
}

/// The receive buffer of the one UDP socket of a server started with `config`.
fn started_buffer(zones: &TempDir, config: &str) -> u64 {
    let (d, _etc) = serve(zones, config, &["--no-admin"]);
    let sockets = skmem(d.dns.port());
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    sockets[0].0
}

#[test]
fn the_receive_buffer_is_1_mib_by_default_and_the_systems_with_0() {
    let dir = zones("udp-rcvbuf", "b.test.");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // Root may exceed rmem_max (SO_RCVBUFFORCE); others get at most rmem_max. The kernel
    // reports twice the size it grants.
    let granted = |bytes: u64| {
        2 * if root {
            bytes
        } else {
            bytes.min(sysctl("rmem_max"))
        }
    };
    assert_eq!(started_buffer(&dir, ""), granted(1 << 20));
    assert_eq!(
        started_buffer(&dir, "[limits]\nudp_receive_buffer = 0\n"),
        sysctl("rmem_default")
    );
    assert_eq!(
        started_buffer(&dir, "[limits]\nudp_receive_buffer = 3000000\n"),
        granted(3_000_000)
    );
}

fn signal(d: &Daemon, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &d.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

#[test]
fn a_stalled_worker_drops_are_counted() {
    let dir = zones("udp-drops", "drops.test.");
    // Rate limiting off: it would hold back the flood's answers, which is not what is
    // measured here.
    let (d, _etc) = serve(
        &dir,
        "[limits]\nudp_receive_buffer = 65536\n[rrl]\nenabled = false\n",
        &[],
    );
    let port = d.dns.port();
    // One worker, one socket, the buffer asked for (the kernel reports it doubled).
    let sockets = skmem(port);
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    assert_eq!(sockets[0].0, 2 * 65536, "{sockets:?}");
    assert_eq!(metric(&d, "roundel_dns_udp_receive_drops_total"), 0);

    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let q = query_bytes(7, "www.drops.test.", 1);
    signal(&d, "-STOP");
    // The process is stopped: nothing reads the socket, so all but the first couple of
    // hundred queries are dropped by the kernel.
    const SENT: u64 = 3000;
    for _ in 0..SENT {
        client.send_to(&q, d.dns).unwrap();
    }
    let dropped: u64 = skmem(port).iter().map(|s| s.1).sum();
    signal(&d, "-CONT");
    assert!(
        dropped > SENT / 2,
        "{dropped} of {SENT} dropped with a 64 KiB buffer"
    );

    // Resumed: the queued queries are answered, then a new one is.
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 512];
    let fresh = query_bytes(8, "www.drops.test.", 1);
    let answered = loop {
        client.send_to(&fresh, d.dns).unwrap();
        // Drain: the answer to `fresh` (id 8) comes after those of the queued ones.
        let mut got = false;
        while let Ok((n, _)) = client.recv_from(&mut buf) {
            if n >= 2 && buf[..2] == 8u16.to_be_bytes() {
                got = true;
                break;
            }
        }
        if got || Instant::now() > deadline {
            break got;
        }
    };
    assert!(answered, "no answer within 10 s of SIGCONT");
    // Nothing was dropped since (the socket is drained); read again all the same, so that
    // a datagram still on its way at the first reading cannot make the two differ.
    let dropped_now: u64 = skmem(port).iter().map(|s| s.1).sum();
    assert!(dropped_now >= dropped);
    assert_eq!(
        metric(&d, "roundel_dns_udp_receive_drops_total"),
        dropped_now,
        "the metric counts what the kernel dropped at the socket"
    );
}
