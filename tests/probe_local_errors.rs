//! A health check that fails for a reason on this host (the process is out of descriptors)
//! is an error of the checker: the node keeps its state, and the failure is counted in
//! `roundel_probe_local_errors_total`, not against the node. So does an HTTP check with
//! `reuse_connection` whose kept connection is gone (its server closes every connection).
//!
//! This test file is its own process, so it can lower its own descriptor limit and use
//! every descriptor up without disturbing other tests. The backends run in a child process
//! (this test binary again, [`backend_process`]): in-process they would share the exhausted
//! descriptor table, and a backend that cannot accept makes a check that did get a socket
//! time out, a real failure counted against the node (what made this test fail under load,
//! when a check was in flight as the descriptors ran out).
//!
//! The file has its own `main` (`harness = false` in Cargo.toml): run with
//! `ROUNDEL_TEST_BACKEND_PROCESS` set it is the backend process, otherwise the test.

mod support_backends;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use roundel::health::HealthMonitor;
use roundel::limits::counters::PROBE_LOCAL_ERRORS;
use roundel::node::Health;
use support_backends::{Backend, Mode, pools};

/// Set in the environment of the backend process.
const BACKEND_ENV: &str = "ROUNDEL_TEST_BACKEND_PROCESS";

/// Opens /dev/null until the process has no descriptor left (bounded by the limit). Called
/// again, it takes the descriptors freed since (a check in flight when they ran out).
fn exhaust_descriptors(held: &mut Vec<std::fs::File>) {
    for _ in 0..4096 {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                return;
            }
        }
    }
    panic!("still not out of descriptors after 4096");
}

/// The backend process, killed by PID on drop.
struct Backends {
    child: Child,
    http: SocketAddr,
    tcp: SocketAddr,
}

impl Backends {
    /// Starts [`backend_process`] and reads its addresses (bounded: 20 s).
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(BACKEND_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the backend process");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("BACKENDS ") {
                    let _ = tx.send(rest.trim().to_owned());
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the backend process gave no addresses within 20 s: {e}");
            }
        };
        let mut addrs = line.split(' ').map(|a| a.parse().unwrap());
        let (http, tcp) = (addrs.next().unwrap(), addrs.next().unwrap());
        Self { child, http, tcp }
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test name, as libtest would print it.
const TEST: &str = "checks_without_descriptors_change_no_node";

fn main() {
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    if std::env::var_os(BACKEND_ENV).is_some() {
        rt().block_on(backend_process());
        return;
    }
    // `cargo test NAME` passes NAME to every test binary: run only when it matches, as
    // libtest would; `--list` lists.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{TEST}: test");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| TEST.contains(f.as_str())) {
        println!("\nrunning 0 tests\n");
        return;
    }
    println!("\nrunning 1 test");
    rt().block_on(checks_without_descriptors_change_no_node());
    println!("test {TEST} ... ok\n\ntest result: ok. 1 passed; 0 failed\n");
}

/// The backends of [`checks_without_descriptors_change_no_node`], in a process of their
/// own: an HTTP backend on 127.0.0.71 and a TCP one on 127.0.0.72; prints their addresses
/// and serves until its standard input closes (or it is killed).
async fn backend_process() {
    let http = Backend::http("127.0.0.71", Mode::ok()).await;
    let tcp = Backend::tcp("127.0.0.72").await;
    println!("BACKENDS {} {}", http.addr, tcp.addr);
    // Until the parent goes: its end of the pipe closes when it exits or drops it.
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await;
}

async fn checks_without_descriptors_change_no_node() {
    // Started before the limit is lowered: spawning takes descriptors.
    let backends = Backends::start();
    // A soft limit a little above what the test uses, so it can be reached quickly.
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

    let (http, tcp) = (backends.http, backends.tcp);
    // Timeouts generous for a loaded machine: a real timeout would count against the node
    // and fail the test for the wrong reason.
    let zone = format!(
        "[pools.h]\ncheck = {{ http = {{ port = {} }}, interval = \"300ms\", timeout = \"290ms\", fall = 3, rise = 1 }}\nnodes = [\"{}\"]\n\
         [pools.t]\ncheck = {{ tcp = {{ port = {} }}, interval = \"300ms\", timeout = \"290ms\", fall = 3, rise = 1 }}\nnodes = [\"{}\"]\n\
         [pools.k]\ncheck = {{ http = {{ port = {}, reuse_connection = true }}, interval = \"300ms\", timeout = \"290ms\", fall = 3, rise = 1 }}\nnodes = [\"{}\"]\n",
        http.port(),
        http.ip(),
        tcp.port(),
        tcp.ip(),
        http.port(),
        http.ip()
    );
    let mon = HealthMonitor::new();
    let rec = mon.reconcile(&pools(&zone)).await;
    let nodes: Vec<_> = rec
        .pools
        .iter()
        .map(|p| p.nodes()[0].health.clone())
        .collect();
    for n in &nodes {
        assert_eq!(n.health(), Health::Up);
    }
    let failures_before: Vec<u64> = nodes.iter().map(|n| n.detail().failures).collect();

    let before = PROBE_LOCAL_ERRORS.get();
    let mut held = Vec::new();
    exhaust_descriptors(&mut held);
    // Both probes keep checking (every 300 ms) and fail locally: wait for twice `fall`
    // failures of each. A check in flight just now frees its socket when it ends: take
    // such descriptors too, or the next checks would use them.
    let start = Instant::now();
    while PROBE_LOCAL_ERRORS.get() < before + 12 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "local errors not counted: {}",
            PROBE_LOCAL_ERRORS.get() - before
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        exhaust_descriptors(&mut held);
    }
    for n in &nodes {
        assert_eq!(
            n.health(),
            Health::Up,
            "a local failure took the node down: {:?}",
            n.detail().history
        );
    }
    drop(held);

    // Descriptors back: the checks pass again, and nothing counted against the nodes.
    let checks: Vec<u64> = nodes.iter().map(|n| n.detail().checks).collect();
    let start = Instant::now();
    while nodes
        .iter()
        .zip(&checks)
        .any(|(n, c)| n.detail().checks < c + 2)
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "checks did not resume"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (n, f) in nodes.iter().zip(failures_before) {
        assert_eq!(n.health(), Health::Up);
        let d = n.detail();
        assert_eq!(d.failures, f, "local failures counted against the node");
        assert_eq!(d.transitions, 1, "only the first result changed the state");
    }
    mon.shutdown().await;
    drop(backends);
}
