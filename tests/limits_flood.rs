//! The `roundel` binary under a TCP connection flood (real sockets, loopback only): the
//! DNS-over-TCP cap holds, UDP, a new TCP client, the admin API and the health probes keep
//! working, no node changes state, and the accept loop does not spin. Once with the cap
//! lowered in the configuration, once with only 256 descriptors for the whole process.

mod ops_support;
mod support_backends;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ops_support::*;
use serde_json::Value;
use support_backends::{Backend, Mode};

const BIN: &str = env!("CARGO_BIN_EXE_roundel");
const POOL: &str = "web.flood.test.";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_dns_port() -> u16 {
    let l = roundel::server::Listeners::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
    l.udp_addrs()[0].port()
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pool_zone(backends: &[&Backend]) -> String {
    let nodes: Vec<String> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "{{ addr = \"{}\", label = \"web{}\", check_port = {} }}",
                b.addr.ip(),
                i + 1,
                b.port()
            )
        })
        .collect();
    zone(
        "flood.test.",
        "1",
        &format!(
            "[pools.web]\ncheck = {{ http = {{ path = \"/health\" }}, interval = \"300ms\", timeout = \"250ms\", fall = 2, rise = 1 }}\nttl = 30\nnodes = [{}]\n",
            nodes.join(", ")
        ),
    )
}

struct Flooded {
    proc: Proc,
    dns: SocketAddr,
    admin: SocketAddr,
    _dir: TempDir,
}

/// Starts the binary with `limits_toml` as the `[limits]` table and, if given, a hard and
/// soft descriptor limit; waits until both nodes are up.
fn start(tag: &str, backends: &[&Backend], limits_toml: &str, nofile: Option<u64>) -> Flooded {
    let dir = TempDir::new(tag);
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    write_atomic(&zones.join("flood.test.toml"), &pool_zone(backends));
    let config = dir.join("roundel.toml");
    std::fs::write(&config, format!("[limits]\n{limits_toml}\n")).unwrap();
    let port = free_dns_port();
    let admin_port = free_tcp_port();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--udp-threads", "1", "--config"])
        .arg(&config)
        .arg("--zones")
        .arg(&zones)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin", &format!("127.0.0.1:{admin_port}")])
        .env_remove("ROUNDEL_ADMIN_TOKEN")
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap());
    if let Some(n) = nofile {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let r = libc::rlimit {
                    rlim_cur: n as libc::rlim_t,
                    rlim_max: n as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let f = Flooded {
        proc: Proc(cmd.spawn().unwrap()),
        dns: format!("127.0.0.1:{port}").parse().unwrap(),
        admin: format!("127.0.0.1:{admin_port}").parse().unwrap(),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = status(f.admin)
            && nodes(&st).iter().all(|n| n["state"] == "up")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nodes not up within 20 s; server log:\n{}",
            std::fs::read_to_string(f._dir.join("stderr.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    f
}

fn status(admin: SocketAddr) -> Option<Value> {
    let (st, body) = http_get_blocking(admin, "/api/v1/status")?;
    (st == 200).then(|| serde_json::from_str(&body).ok())?
}

fn nodes(st: &Value) -> Vec<Value> {
    ["web1", "web2"]
        .iter()
        .map(|l| node(st, POOL, l).clone())
        .collect()
}

/// Every node up, with one transition only (unknown to up): none has changed since.
fn assert_nodes_steady(admin: SocketAddr, when: &str) {
    let st = status(admin).unwrap_or_else(|| panic!("{when}: no admin status"));
    for n in nodes(&st) {
        assert_eq!(n["state"], "up", "{when}: {n}");
        assert_eq!(n["transitions"].as_array().unwrap().len(), 1, "{when}: {n}");
    }
}

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

/// One query on a new connection from 127.0.0.9 (not a flooding address).
fn tcp_query(dns: SocketAddr, id: u16) -> Result<(), String> {
    let mut s = connect_from("127.0.0.9", dns).ok_or("cannot connect")?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let q = query_bytes(id, "web.flood.test.", A);
    let mut f = (q.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(&q);
    s.write_all(&f).map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)
        .map_err(|e| format!("no TCP answer: {e}"))?;
    let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut m).map_err(|e| e.to_string())?;
    if m[..2] != id.to_be_bytes() {
        return Err("wrong id".into());
    }
    Ok(())
}

/// Opens `n` idle connections to `dns` from 127.0.0.1 to 127.0.0.8 in turn (the server
/// may close some of them).
fn flood(dns: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|i| connect_from(&format!("127.0.0.{}", 1 + i % 8), dns))
        .collect()
}

fn connect_from(ip: &str, dns: SocketAddr) -> Option<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    s.bind(&format!("{ip}:0").parse::<SocketAddr>().unwrap().into())
        .ok()?;
    s.connect_timeout(&dns.into(), Duration::from_secs(2))
        .ok()?;
    Some(s.into())
}

/// Checks UDP, a new TCP client, the admin API and the nodes while `trickle` connections
/// each send a query every 500 ms and new connections keep arriving, for `window`; returns
/// the CPU share of one core the server used meanwhile and the most DNS connections it
/// held at once (its own gauge, sampled each round: connections still in the kernel's
/// backlog are not the server's).
fn under_flood(f: &Flooded, window: Duration) -> (f64, usize) {
    let pid = f.proc.0.id();
    let dns = f.dns;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut conns = flood(dns, 20);
            let q = query_bytes(1, "web.flood.test.", A);
            let mut frame = (q.len() as u16).to_be_bytes().to_vec();
            frame.extend_from_slice(&q);
            for _ in 0..200 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                for c in &mut conns {
                    let _ = c.write_all(&frame);
                }
                conns.extend(flood(dns, 5));
                std::thread::sleep(Duration::from_millis(500));
            }
            conns.len()
        })
    };
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let mut checks = 0;
    let mut most = 0;
    while t0.elapsed() < window {
        most = most.max(metric(f.admin, "roundel_dns_tcp_connections_open") as usize);
        let m = query(dns, "web.flood.test.", A);
        assert_eq!(addrs(&m).len(), 2, "UDP answer under the flood");
        tcp_query(dns, 0x7000 + checks)
            .unwrap_or_else(|e| panic!("new TCP client under the flood: {e}"));
        assert_nodes_steady(f.admin, "under the flood");
        checks += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let cpu = (cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = trickler.join();
    assert!(checks >= 3, "only {checks} rounds of checks");
    (cpu, most)
}

fn metric(admin: SocketAddr, name: &str) -> f64 {
    let (_, text) = http_get_blocking(admin, "/metrics").expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in metrics"))
}

#[test]
fn a_flood_up_to_the_tcp_cap_leaves_every_listener_and_probe_working() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let b1 = rt.block_on(Backend::http("127.0.0.61", Mode::ok()));
    let b2 = rt.block_on(Backend::http("127.0.0.62", Mode::ok()));
    let f = start(
        "flood-cap",
        &[&b1, &b2],
        "tcp_clients = 200\ntcp_clients_per_address = 100\ntcp_idle_timeout = \"60s\"",
        None,
    );
    let held = flood(f.dns, 400);
    assert!(held.len() >= 390, "only {} connections opened", held.len());
    let (cpu, open) = under_flood(&f, Duration::from_secs(4));
    eprintln!(
        "cap 200: 400 idle + trickling; server holds at most {open}, CPU {:.1}% of a core",
        cpu * 100.0
    );
    // The cap, and evicted connections still closing.
    assert!(open <= 216, "server holds {open} connections, cap 200");
    assert!(metric(f.admin, "roundel_dns_tcp_evicted_total") >= 200.0);
    assert!(
        cpu < 0.25,
        "server used {:.0}% of a core under the flood",
        cpu * 100.0
    );
    // Idle, after the flood: the accept loop does not spin.
    let pid = f.proc.0.id();
    let c0 = cpu_seconds(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let idle_cpu = (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64();
    eprintln!(
        "cap 200: idle with the flood held, CPU {:.1}% of a core",
        idle_cpu * 100.0
    );
    assert!(
        idle_cpu < 0.10,
        "{:.0}% of a core with nothing to do",
        idle_cpu * 100.0
    );
    assert_nodes_steady(f.admin, "after the flood");
    drop(held);
}

#[test]
fn with_256_descriptors_a_flood_takes_no_node_down() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let b1 = rt.block_on(Backend::http("127.0.0.63", Mode::ok()));
    let b2 = rt.block_on(Backend::http("127.0.0.64", Mode::ok()));
    let f = start(
        "flood-256",
        &[&b1, &b2],
        "tcp_idle_timeout = \"60s\"\ntcp_clients_per_address = 1000",
        Some(256),
    );
    // Twice the descriptors the process has, on DNS, and admin connections as well.
    let held = flood(f.dns, 512);
    let admin_held: Vec<TcpStream> = (0..20)
        .filter_map(|_| TcpStream::connect_timeout(&f.admin, Duration::from_secs(2)).ok())
        .collect();
    let (cpu, open) = under_flood(&f, Duration::from_secs(4));
    eprintln!(
        "256 descriptors: 512 idle + trickling; server holds at most {open}, CPU {:.1}% of a core",
        cpu * 100.0
    );
    // The budget for 256: 64 fixed, 64 for probes, 32 admin, 80 TCP + 16 closing.
    assert!(
        open <= 96,
        "server holds {open} DNS connections with 256 descriptors"
    );
    assert_eq!(
        metric(f.admin, "roundel_dns_tcp_accept_errors_total"),
        0.0,
        "never out of descriptors"
    );
    assert!(
        cpu < 0.25,
        "server used {:.0}% of a core under the flood",
        cpu * 100.0
    );
    assert!(f.proc.0.id() > 0);
    assert_nodes_steady(f.admin, "after the flood");
    assert_eq!(
        metric(f.admin, "roundel_probe_local_errors_total"),
        0.0,
        "the probe reserve held"
    );
    drop(admin_held);
    drop(held);
}

#[test]
fn roundel_check_validates_the_limits_table() {
    let dir = TempDir::new("check-limits");
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[limits]\ntcp_clients = 0\ntcp_io_timeout = \"fast\"\nadmin_bodylimit = 1\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&bad)
        .arg(&zones)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stdout);
    // Every problem of the file, the unknown key with its path and the nearest valid one.
    assert!(
        err.contains("bad.toml:2:15: limits.tcp_clients: must be at least 1")
            && err.contains("bad.toml:3:18: limits.tcp_io_timeout: bad duration")
            && err.contains(
                "bad.toml:4:1: limits.admin_bodylimit: unknown key `admin_bodylimit`; did you mean `admin_body_limit`?"
            ),
        "{err}"
    );
    let good = dir.join("good.toml");
    std::fs::write(&good, "[limits]\ntcp_clients = 0\n").unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&good)
        .arg(&zones)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("good.toml:2:15: limits.tcp_clients: must be at least 1"),
        "{err}"
    );
    std::fs::write(
        &good,
        "[limits]\ntcp_clients = 300\ntcp_io_timeout = \"2s\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&good)
        .arg(&zones)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("configuration OK") && text.contains("300 TCP clients"),
        "{text}"
    );
}
