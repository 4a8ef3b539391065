//! A health check that fails for a reason on this host (the process is out of descriptors)
//! is an error of the checker: the node keeps its state, and the failure is counted in
//! `roundel_probe_local_errors_total`, not against the node.
//!
//! This test file is its own process, so it can lower its own descriptor limit and use
//! every descriptor up without disturbing other tests.

mod support_backends;

use std::time::{Duration, Instant};

use roundel::health::HealthMonitor;
use roundel::limits::counters::PROBE_LOCAL_ERRORS;
use roundel::node::Health;
use support_backends::{Backend, Mode, pools};

/// Opens /dev/null until the process has no descriptor left (bounded by the limit).
fn exhaust_descriptors() -> Vec<std::fs::File> {
    let mut held = Vec::new();
    for _ in 0..4096 {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                return held;
            }
        }
    }
    panic!("still not out of descriptors after 4096");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_without_descriptors_change_no_node() {
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

    let http = Backend::http("127.0.0.71", Mode::ok()).await;
    let tcp = Backend::tcp("127.0.0.72").await;
    let zone = format!(
        "[pools.h]\ncheck = {{ http = {{ port = {} }}, interval = \"100ms\", timeout = \"80ms\", fall = 1, rise = 1 }}\nnodes = [\"{}\"]\n\
         [pools.t]\ncheck = {{ tcp = {{ port = {} }}, interval = \"100ms\", timeout = \"80ms\", fall = 1, rise = 1 }}\nnodes = [\"{}\"]\n",
        http.port(),
        http.addr.ip(),
        tcp.port(),
        tcp.addr.ip()
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
    let held = exhaust_descriptors();
    // Both probes keep checking (every 100 ms) and fail locally: wait for a few of each.
    let start = Instant::now();
    while PROBE_LOCAL_ERRORS.get() < before + 6 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "local errors not counted: {}",
            PROBE_LOCAL_ERRORS.get() - before
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in &nodes {
        assert_eq!(n.health(), Health::Up, "a local failure took the node down");
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
            start.elapsed() < Duration::from_secs(5),
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
}
