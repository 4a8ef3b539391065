//! The DNS-over-TCP accept loop out of descriptors: it backs off instead of spinning, and
//! serves again once descriptors are free.
//!
//! This test file is its own process: it lowers its own descriptor limit and uses every
//! descriptor up while a server runs in it.

mod ops_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ops_support::*;
use roundel::limits::counters::TCP_ACCEPT_ERRORS;

/// CPU time of this process, read from `stat`, a `/proc/self/stat` opened while there were
/// descriptors (re-read in place: no descriptor is needed once they are all taken).
fn cpu_seconds(stat: &std::fs::File) -> f64 {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 1024];
    let n = stat.read_at(&mut buf, 0).unwrap();
    let stat = std::str::from_utf8(&buf[..n]).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[test]
fn out_of_descriptors_the_accept_loop_backs_off_and_recovers() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a struct we own; this test binary is a process of its own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        r.rlim_cur = r.rlim_cur.min(512);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
    }
    let zones = TempDir::new("accept-backoff");
    write_atomic(
        &zones.join("ab.test.toml"),
        &zone("ab.test.", "1", "[names.www]\nA = \"192.0.2.80\""),
    );
    let s = Server::start(zones.path(), Opts::default());

    // Client sockets made while there are descriptors; connected once there are none.
    let clients: Vec<socket2::Socket> = (0..8)
        .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap())
        .collect();
    let stat = std::fs::File::open("/proc/self/stat").unwrap();
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                break;
            }
        }
        assert!(held.len() < 4096, "not out of descriptors");
    }
    let errors0 = TCP_ACCEPT_ERRORS.get();
    for c in &clients {
        // Completed by the kernel (backlog); the server's accept() gets EMFILE.
        c.connect_timeout(&s.dns.into(), Duration::from_secs(2))
            .unwrap();
    }
    let cpu0 = cpu_seconds(&stat);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let cpu = (cpu_seconds(&stat) - cpu0) / t0.elapsed().as_secs_f64();
    let errors = TCP_ACCEPT_ERRORS.get() - errors0;
    drop(held);
    eprintln!(
        "out of descriptors for 1.5 s: {errors} accept errors, CPU {:.1}% of a core",
        cpu * 100.0
    );
    assert!(errors >= 1, "accept() never failed");
    assert!(errors <= 50, "{errors} accept errors in 1.5 s: no back-off");
    assert!(
        cpu < 0.3,
        "{:.0}% of a core while out of descriptors",
        cpu * 100.0
    );

    // Descriptors free again: the waiting connections are accepted and answered (the
    // back-off is at most 1 s).
    let mut c: TcpStream = clients.into_iter().next().unwrap().into();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let q = query_bytes(5, "www.ab.test.", A);
    let mut f = (q.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(&q);
    c.write_all(&f).unwrap();
    let mut len = [0u8; 2];
    c.read_exact(&mut len)
        .expect("answered after the descriptors came back");
    assert!(u16::from_be_bytes(len) > 12);
}
