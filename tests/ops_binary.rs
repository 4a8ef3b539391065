//! The `roundel` binary as a service: READY=1 / STOPPING=1 to systemd over a real
//! NOTIFY_SOCKET, per-query logging off by default and on with `--query-log`, and
//! `roundel ctl` against a running server.

mod ops_support;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_roundel");

/// A port on 127.0.0.1 where nothing listens (bound with port 0 and released), for a
/// client that must find no server. Servers bind port 0 themselves and log the address.
fn free_port() -> u16 {
    let l = roundel::server::Listeners::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
    l.udp_addrs()[0].port()
}

/// The server process, its stderr collected line by line as it runs; killed and reaped
/// on drop.
struct Proc(Child, Arc<Mutex<Vec<String>>>);

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Proc(child, log)
    }

    /// The UDP address the server reports binding (it is started on port 0), waiting for
    /// the log line at most 15 s.
    fn dns_addr(&self) -> std::net::SocketAddr {
        let start = Instant::now();
        for _ in 0..1500 {
            let found = self.1.lock().unwrap().iter().find_map(|l| {
                let rest = &l[l.find("serving DNS over UDP")?..];
                let rest = &rest[rest.find("addr=")? + 5..];
                rest.split_whitespace().next()?.parse().ok()
            });
            if let Some(a) = found {
                return a;
            }
            if start.elapsed() > Duration::from_secs(15) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no address logged: {:#?}", self.1.lock().unwrap());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm(p: &Proc) {
    let ok = Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits (bounded) for the process to exit; returns its stderr.
fn wait_exit(mut p: Proc, bound: Duration) -> String {
    let start = Instant::now();
    for _ in 0..(bound.as_millis() / 20 + 1) {
        if p.0.try_wait().unwrap().is_some() {
            // The reader thread ends with the pipe; give it a moment to take the rest.
            for _ in 0..100 {
                if Arc::strong_count(&p.1) == 1 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            return p.1.lock().unwrap().join("\n");
        }
        if start.elapsed() > bound {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("roundel did not exit within {bound:?}");
}

fn zone_dir(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    write_atomic(
        &d.join("bin.test.toml"),
        &zone("bin.test.", "7", "[names.www]\nA = \"192.0.2.80\""),
    );
    d
}

/// Polls DNS until the server answers (bounded).
fn wait_dns(port: u16) {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for i in 0..100u16 {
        let _ = sock.send_to(&query_bytes(i, "www.bin.test.", A), addr);
        let mut buf = [0u8; 512];
        if sock.recv_from(&mut buf).is_ok() {
            return;
        }
    }
    panic!("no DNS answer on {addr}");
}

#[test]
fn tells_systemd_when_ready_and_when_stopping() {
    let zones = zone_dir("notify");
    let sock_dir = TempDir::new("notify-sock");
    let sock_path = sock_dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let p = Proc::spawn(
        Command::new(BIN)
            .args(["serve", "--no-admin", "--zones"])
            .arg(zones.path())
            .args(["--listen", "127.0.0.1:0"])
            .env("NOTIFY_SOCKET", &sock_path)
            .env("RUST_LOG", "info")
            .env_remove("ROUNDEL_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("READY=1 within 20 s");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    // Ready means ready: the first query is answered.
    let m = query(p.dns_addr(), "www.bin.test.", A);
    assert_eq!(addrs(&m), ["192.0.2.80"]);
    sigterm(&p);
    let got = sock.recv(&mut buf);
    let log = wait_exit(p, Duration::from_secs(10));
    let n = got.unwrap_or_else(|e| panic!("no STOPPING=1 ({e}); log:\n{log}"));
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "STOPPING=1"), "{msg:?}");
    assert!(log.contains("stopped"), "{log}");
}

fn serve_and_query(extra: &[&str], tag: &str) -> String {
    let zones = zone_dir(tag);
    let p = Proc::spawn(
        Command::new(BIN)
            .args(["serve", "--no-admin", "--udp-threads", "1", "--zones"])
            .arg(zones.path())
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    let addr = p.dns_addr();
    wait_dns(addr.port());
    for _ in 0..3 {
        query(addr, "www.bin.test.", A);
    }
    query(addr, "nope.bin.test.", 16);
    sigterm(&p);
    wait_exit(p, Duration::from_secs(10))
}

#[test]
fn per_query_logging_is_off_by_default_and_on_with_the_flag() {
    let quiet = serve_and_query(&[], "qlog-off");
    assert!(quiet.contains("zones loaded"), "{quiet}");
    assert!(
        !quiet.contains("qname="),
        "a query was logged by default:\n{quiet}"
    );
    let loud = serve_and_query(&["--query-log"], "qlog-on");
    let lines: Vec<&str> = loud
        .lines()
        .filter(|l| l.contains("roundel::query"))
        .collect();
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("qname=www.bin.test.") && l.contains("rcode=NOERROR"))
            .count()
            >= 4,
        "{loud}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("qname=nope.bin.test.") && l.contains("qtype=TXT")),
        "{loud}"
    );
    assert!(lines.iter().all(|l| l.contains("client=127.0.0.1")));
}

fn ctl(server: &Server, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    c.arg("ctl")
        .args(["--server", &server.url("")])
        .args(args)
        .env_remove("ROUNDEL_ADMIN_TOKEN")
        .env_remove("ROUNDEL_ADMIN_URL");
    if let Some(t) = token {
        c.env("ROUNDEL_ADMIN_TOKEN", t);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ctl_wraps_the_api() {
    let zones = TempDir::new("ctl");
    let file = zones.join("ctl.test.toml");
    let text = zone(
        "ctl.test.",
        "\"auto\"",
        "[pools.web]\ncheck = { none = true }\nnodes = [{ addr = \"192.0.2.10\", label = \"a\" }, { addr = \"192.0.2.11\", label = \"b\" }]\n",
    );
    write_atomic(&file, &text);
    let s = Server::start(
        zones.path(),
        Opts {
            token: Some("ctl-token".into()),
            ..Opts::default()
        },
    );

    let (code, out, err) = ctl(&s, None, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ctl.test."), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("web.ctl.test.") && l.contains(" a "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("192.0.2.10") && row.contains(" up "), "{row}");

    // Without the token: refused, exit 1, the reason on stderr.
    let (code, _, err) = ctl(&s, None, &["drain", "web.ctl.test", "a"]);
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");

    let (code, out, err) = ctl(&s, Some("ctl-token"), &["drain", "web.ctl.test", "a"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("a drained"), "{out}");
    assert_eq!(addrs(&query(s.dns, "web.ctl.test.", A)), ["192.0.2.11"]);
    let (code, out, _) = ctl(&s, Some("ctl-token"), &["weight", "web.ctl.test", "b", "5"]);
    assert_eq!(code, 0);
    assert!(out.contains("weight set to 5"), "{out}");
    let (code, out, _) = ctl(&s, None, &["--json", "status"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(node(&v, "web.ctl.test.", "a")["state"], "drain");
    assert_eq!(node(&v, "web.ctl.test.", "b")["effective_weight"], 5);
    let (code, _, _) = ctl(
        &s,
        Some("ctl-token"),
        &["weight", "web.ctl.test", "b", "clear"],
    );
    assert_eq!(code, 0);
    let (code, _, _) = ctl(&s, Some("ctl-token"), &["maint", "web.ctl.test", "b"]);
    assert_eq!(code, 0);
    let (code, _, _) = ctl(&s, Some("ctl-token"), &["ready", "web.ctl.test", "a"]);
    assert_eq!(code, 0);
    assert_eq!(addrs(&query(s.dns, "web.ctl.test.", A)), ["192.0.2.10"]);

    // Explain, as a table.
    let (code, out, err) = ctl(
        &s,
        None,
        &["explain", "web.ctl.test", "A", "--client", "198.51.100.1"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("NOERROR, authoritative"), "{out}");
    assert!(out.contains("192.0.2.10"), "{out}");
    let b_row = out
        .lines()
        .find(|l| l.starts_with("b "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(b_row.contains("maint"), "{b_row}");

    // Reload: accepted, then a broken edit rejected with its location, exit 1.
    let (code, out, _) = ctl(&s, Some("ctl-token"), &["reload"]);
    assert_eq!(code, 0);
    assert!(out.contains("serving generation 2"), "{out}");
    write_atomic(&file, &text.replace("192.0.2.11", "192.0.2.311"));
    let (code, _, err) = ctl(&s, Some("ctl-token"), &["reload"]);
    assert_eq!(code, 1);
    assert!(err.contains("reload rejected"), "{err}");
    assert!(err.contains("ctl.test.toml:"), "{err}");
    let (_, out, _) = ctl(&s, None, &["status"]);
    assert!(out.contains("LAST RELOAD FAILED"), "{out}");

    // No server: exit 2.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = Command::new(BIN)
        .args(["ctl", "--server", &dead, "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}
