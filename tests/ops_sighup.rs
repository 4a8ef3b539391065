//! SIGHUP reloads the zones, tested with the file watcher off (`--no-watch`) so that
//! nothing else can reload them. The binary binds port 0 and the test reads the address
//! it reports in its log, so no port is chosen by bind-release-rebind.

mod ops_support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_roundel");

/// The server process; killed and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (bounded) until a line of `log` satisfies `find`; returns what it found.
fn wait_log<T>(
    log: &Mutex<Vec<String>>,
    bound: Duration,
    find: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    let start = Instant::now();
    for _ in 0..(bound.as_millis() / 10 + 1) {
        if let Some(t) = log.lock().unwrap().iter().find_map(|l| find(l)) {
            return Some(t);
        }
        if start.elapsed() > bound {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// The address in a `serving DNS over UDP addr=...` log line.
fn udp_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("serving DNS over UDP") {
        return None;
    }
    let rest = &line[line.find("addr=")? + 5..];
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn sighup_reloads_with_the_watcher_off() {
    let zones = TempDir::new("sighup");
    let file = zones.join("hup.test.toml");
    write_atomic(
        &file,
        &zone("hup.test.", "1", "[names.www]\nA = \"192.0.2.1\""),
    );
    let mut child = Command::new(BIN)
        .args(["serve", "--no-admin", "--no-watch", "--udp-threads", "1"])
        .args(["--listen", "127.0.0.1:0", "--zones"])
        .arg(zones.path())
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let p = Proc(child);
    let log = Arc::new(Mutex::new(Vec::new()));
    {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
    }
    let dns =
        wait_log(&log, Duration::from_secs(15), udp_addr).expect("the server reports its address");
    assert_eq!(serial(&query(dns, "hup.test.", SOA)), 1);

    write_atomic(
        &file,
        &zone("hup.test.", "2", "[names.www]\nA = \"192.0.2.2\""),
    );
    let ok = Command::new("kill")
        .args(["-HUP", &p.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    wait_log(&log, Duration::from_secs(10), |l| {
        (l.contains("zones loaded") && l.contains("trigger=\"signal\"")
            || l.contains("trigger=signal"))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("no reload by signal logged: {:#?}", log.lock().unwrap()));
    assert_eq!(serial(&query(dns, "hup.test.", SOA)), 2);
    assert_eq!(addrs(&query(dns, "www.hup.test.", A)), ["192.0.2.2"]);
    let lines = log.lock().unwrap();
    assert!(
        !lines.iter().any(|l| l.contains("zone files changed")),
        "the watcher reloaded: {lines:#?}"
    );
}
