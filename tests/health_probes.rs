//! Health probes against real HTTP(S)/TCP backends on 127.0.0.x: detection time, rise,
//! timeouts, status and body checks, TLS, request shape, reported weights.

mod support_backends;

use std::time::{Duration, Instant};

use roundel::health::HealthMonitor;
use roundel::node::{Failure, Family, Health, NodeHealth, PoolRuntime, Reported};
use roundel::policy::{ClientKey, SelectInput, Selection, select};
use support_backends::{Backend, Mode, dead_addr, pools, wait_for};

const INTERVAL_MS: u64 = 200;
const TIMEOUT_MS: u64 = 100;
/// Scheduling slack on a busy 2-core machine.
const MARGIN: Duration = Duration::from_millis(250);

fn http_pool(path_body: &str, backends: &[&Backend], extra: &str) -> String {
    let nodes: Vec<String> = backends
        .iter()
        .map(|b| format!("\"{}\"", b.addr.ip()))
        .collect();
    format!(
        r#"
[checks.c]
http = {{ port = {port}, path = "/health"{path_body} }}
interval = "{INTERVAL_MS}ms"
timeout = "{TIMEOUT_MS}ms"
fall = 2
rise = 3
[pools.web]
check = "c"
{extra}
nodes = [{nodes}]
"#,
        port = backends[0].port(),
        nodes = nodes.join(", ")
    )
}

fn health(p: &PoolRuntime, i: usize) -> &NodeHealth {
    &p.nodes()[i].health
}

fn answer(p: &PoolRuntime) -> Vec<u8> {
    let mut s = Selection::default();
    let input = SelectInput {
        counter: 0,
        family: Family::V4,
        client: ClientKey {
            addr: "198.51.100.1".parse().unwrap(),
            prefix_len: 0,
            from_ecs: false,
        },
        now: Instant::now(),
    };
    select(p, &input, &mut s);
    let mut v = s.nodes().to_vec();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_goes_down_within_interval_x_fall_plus_timeout_and_rises_after_rise() {
    let mut a = Backend::http("127.0.0.21", Mode::ok()).await;
    // Same port on another address: one check (one port) serves both nodes.
    let b = Backend::http_at(
        (std::net::Ipv4Addr::new(127, 0, 0, 22), a.port()).into(),
        Mode::ok(),
    )
    .await;

    let mon = HealthMonitor::new();
    let r = mon.reconcile(&pools(&http_pool("", &[&a, &b], ""))).await;
    let p = &r.pools[0];
    assert_eq!(
        (health(p, 0).health(), health(p, 1).health()),
        (Health::Up, Health::Up)
    );
    assert_eq!(answer(p), [0, 1]);

    a.stop().await;
    let killed = Instant::now();
    let bound = Duration::from_millis(INTERVAL_MS * 2 + TIMEOUT_MS) + MARGIN;
    let took = wait_for(bound * 2, || health(p, 0).health() == Health::Down).await;
    let took = took.expect("node never went down");
    println!("detection: {took:?} (bound {bound:?})");
    assert!(took <= bound, "down after {took:?}, bound {bound:?}");
    assert_eq!(answer(p), [1], "the dead node leaves answers");
    assert_eq!(health(p, 0).detail().last_failure, Some(Failure::Refused));
    assert_eq!(health(p, 1).health(), Health::Up);

    // Restart: up only after `rise` (3) consecutive successes.
    let hits_before = a.hits();
    a.restart().await;
    let restarted = Instant::now();
    let mut premature = None;
    let came_up = wait_for(Duration::from_secs(3), || {
        let up = health(p, 0).health() == Health::Up;
        let hits = a.hits() - hits_before;
        if up && hits < 3 {
            premature = Some(hits);
        }
        up
    })
    .await
    .expect("node never came back");
    assert_eq!(premature, None, "came up before 3 successful checks");
    let d = health(p, 0).detail();
    assert!(d.ok_run >= 3, "{d:?}");
    println!(
        "rise: up {came_up:?} after restart ({:?} since kill)",
        restarted.duration_since(killed)
    );
    // Rise takes at least (rise - 1) intervals after the first success.
    assert!(came_up >= Duration::from_millis(INTERVAL_MS * 2) - Duration::from_millis(50));
    assert_eq!(answer(p), [0, 1]);
    // History recorded both transitions with reasons.
    let h: Vec<(Health, Health, String)> = d
        .history
        .iter()
        .map(|t| (t.from, t.to, t.reason.clone()))
        .collect();
    assert_eq!(
        h,
        [
            (Health::Unknown, Health::Up, "ok".to_owned()),
            (Health::Up, Health::Down, "connection refused".to_owned()),
            (Health::Down, Health::Up, "ok".to_owned()),
        ]
    );
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_that_accepts_and_never_answers_goes_down_by_timeout() {
    let a = Backend::http("127.0.0.23", Mode::ok()).await;
    let mon = HealthMonitor::new();
    let r = mon.reconcile(&pools(&http_pool("", &[&a], ""))).await;
    let p = &r.pools[0];
    assert_eq!(health(p, 0).health(), Health::Up);
    a.set(Mode::Hang);
    let bound = Duration::from_millis(INTERVAL_MS * 2 + TIMEOUT_MS) + MARGIN;
    let took = wait_for(bound * 2, || health(p, 0).health() == Health::Down)
        .await
        .expect("hanging node never went down");
    println!("hang detection: {took:?} (bound {bound:?})");
    assert!(took <= bound);
    assert_eq!(health(p, 0).detail().last_failure, Some(Failure::Timeout));
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_500_and_missing_body_substring_are_failures() {
    let a = Backend::http("127.0.0.24", Mode::status(500, "ok")).await;
    let b = Backend::http("127.0.0.25", Mode::status(200, "all is fine")).await;
    let c = Backend::http("127.0.0.26", Mode::status(200, "status: ok")).await;
    let zone = |be: &Backend| http_pool(", expect = [\"200-299\"], body = \"ok\"", &[be], "");
    let mon = HealthMonitor::new();
    let mut all = pools(&zone(&a));
    for (i, be) in [&b, &c].into_iter().enumerate() {
        let mut p = pools(&zone(be)).remove(0);
        p.name = hickory_proto::rr::Name::from_ascii(format!("p{i}.example.com.")).unwrap();
        all.push(p);
    }
    let r = mon.reconcile(&all).await;
    // The first result decides: already down, no waiting for `fall`.
    assert_eq!(health(&r.pools[0], 0).health(), Health::Down);
    assert_eq!(
        health(&r.pools[0], 0).detail().last_failure,
        Some(Failure::Status(500))
    );
    assert_eq!(health(&r.pools[1], 0).health(), Health::Down);
    assert_eq!(
        health(&r.pools[1], 0).detail().last_failure,
        Some(Failure::BodyMismatch)
    );
    assert_eq!(health(&r.pools[2], 0).health(), Health::Up);
    // An up node that starts failing with 503 goes down.
    c.set(Mode::status(503, "ok"));
    let bound = Duration::from_millis(INTERVAL_MS * 2 + TIMEOUT_MS) + MARGIN;
    wait_for(bound * 2, || {
        health(&r.pools[2], 0).health() == Health::Down
    })
    .await
    .expect("503 never took the node down");
    assert_eq!(
        health(&r.pools[2], 0).detail().last_failure,
        Some(Failure::Status(503))
    );
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_beyond_max_body_is_not_read() {
    let padding = "x".repeat(200);
    let a = Backend::http("127.0.0.27", Mode::status(200, &format!("{padding}ok"))).await;
    let mon = HealthMonitor::new();
    let cut = mon
        .reconcile(&pools(&http_pool(
            ", body = \"ok\", max_body = 100",
            &[&a],
            "",
        )))
        .await;
    assert_eq!(health(&cut.pools[0], 0).health(), Health::Down);
    let full = mon
        .reconcile(&pools(&http_pool(
            ", body = \"ok\", max_body = 300",
            &[&a],
            "",
        )))
        .await;
    // The edited check takes over from the node's state: up once `rise` checks pass.
    let h = health(&full.pools[0], 0);
    wait_for(Duration::from_secs(5), || h.health() == Health::Up)
        .await
        .expect("the whole body is read: up");
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_node_does_not_delay_other_probes() {
    let slow = Backend::http("127.0.0.28", Mode::Hang).await;
    let fast = Backend::http("127.0.0.29", Mode::ok()).await;
    let zone = format!(
        r#"
[checks.c]
http = {{ port = {p1} }}
interval = "{INTERVAL_MS}ms"
timeout = "150ms"
[checks.d]
http = {{ port = {p2} }}
interval = "{INTERVAL_MS}ms"
timeout = "150ms"
[pools.slow]
check = "c"
nodes = ["{s}"]
[pools.fast]
check = "d"
nodes = ["{f}"]
"#,
        p1 = slow.port(),
        p2 = fast.port(),
        s = slow.addr.ip(),
        f = fast.addr.ip()
    );
    let mon = HealthMonitor::new();
    let started = Instant::now();
    let r = mon.reconcile(&pools(&zone)).await;
    // Startup waits for the slow node's timeout, not more.
    assert!(started.elapsed() < Duration::from_millis(150) + Duration::from_millis(500));
    // Ten checks of the fast node while the slow one hangs each time take about ten
    // intervals: the slow node does not hold the fast one up (that would take 10 x 150 ms
    // timeouts more) nor make it run faster. Bounded by the wait, not a fixed sleep.
    let hits0 = fast.hits();
    let took = wait_for(Duration::from_millis(INTERVAL_MS * 40), || {
        fast.hits() >= hits0 + 10
    })
    .await
    .expect("ten checks of the fast node");
    assert!(
        took >= Duration::from_millis(INTERVAL_MS * 8),
        "ten checks in {took:?}"
    );
    let seen = fast.seen();
    let gaps: Vec<Duration> = seen
        .windows(2)
        .map(|w| w[1].at.unwrap().duration_since(w[0].at.unwrap()))
        .collect();
    let worst = gaps.iter().max().unwrap();
    println!("fast node: 10 checks in {took:?}, worst gap {worst:?}");
    assert!(*worst < Duration::from_millis(INTERVAL_MS) + Duration::from_millis(120));
    let names: Vec<_> = r
        .pools
        .iter()
        .map(|p| (p.name().to_string(), p.nodes()[0].health.health()))
        .collect();
    assert_eq!(
        names,
        [
            ("fast.example.com.".to_owned(), Health::Up),
            ("slow.example.com.".to_owned(), Health::Down)
        ]
    );
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_follows_the_listener() {
    let mut t = Backend::tcp("127.0.0.30").await;
    let zone = format!(
        "[pools.t]\ncheck = {{ tcp = {{ port = {} }}, interval = \"{INTERVAL_MS}ms\", timeout = \"{TIMEOUT_MS}ms\", rise = 1 }}\nnodes = [\"{}\"]\n",
        t.port(),
        t.addr.ip()
    );
    let mon = HealthMonitor::new();
    let r = mon.reconcile(&pools(&zone)).await;
    let p = &r.pools[0];
    assert_eq!(health(p, 0).health(), Health::Up);
    assert!(health(p, 0).srtt().is_some(), "RTT recorded");
    t.stop().await;
    let bound = Duration::from_millis(INTERVAL_MS * 2 + TIMEOUT_MS) + MARGIN;
    assert!(
        wait_for(bound * 2, || health(p, 0).health() == Health::Down)
            .await
            .unwrap()
            <= bound
    );
    t.restart().await;
    wait_for(Duration::from_secs(2), || {
        health(p, 0).health() == Health::Up
    })
    .await
    .expect("tcp node back up");
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_checks_verify_certificates_unless_told_not_to() {
    let a = Backend::https("127.0.0.31", Mode::ok()).await;
    let zone = |verify: bool| {
        format!(
            r#"
[pools.s]
check = {{ https = {{ port = {}, sni = "backend.test", host = "www.backend.test", verify_tls = {verify} }}, interval = "500ms", timeout = "300ms" }}
nodes = ["{}"]
"#,
            a.port(),
            a.addr.ip()
        )
    };
    let mon = HealthMonitor::new();
    let r = mon.reconcile(&pools(&zone(true))).await;
    let h = health(&r.pools[0], 0);
    assert_eq!(
        h.health(),
        Health::Down,
        "self-signed certificate must not pass"
    );
    assert!(
        matches!(h.detail().last_failure, Some(Failure::Tls(_))),
        "{:?}",
        h.detail().last_failure
    );

    let r = mon.reconcile(&pools(&zone(false))).await;
    let h = health(&r.pools[0], 0);
    // The edited check takes over from the node's state: up once `rise` checks pass.
    wait_for(Duration::from_secs(5), || h.health() == Health::Up)
        .await
        .unwrap_or_else(|| panic!("{:?}", h.detail().last_failure));
    let seen = a.seen();
    let last = seen.last().unwrap();
    assert_eq!(last.sni.as_deref(), Some("backend.test"), "SNI name sent");
    assert_eq!(
        last.header("host"),
        Some("www.backend.test"),
        "Host header sent"
    );
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_has_method_path_headers_and_node_check_host() {
    let a = Backend::http("127.0.0.32", Mode::ok()).await;
    let zone = format!(
        r#"
[pools.h]
check = {{ http = {{ port = {}, method = "POST", path = "/hc?deep=1", host = "svc.example", headers = {{ "X-Probe" = "roundel" }} }} }}
nodes = [{{ addr = "192.0.2.1", check_addr = "{}", check_host = "node1.svc.example" }}]
"#,
        a.port(),
        a.addr.ip()
    );
    let mon = HealthMonitor::new();
    let r = mon.reconcile(&pools(&zone)).await;
    assert_eq!(health(&r.pools[0], 0).health(), Health::Up);
    let s = a.seen().remove(0);
    assert_eq!(s.request_line, "POST /hc?deep=1 HTTP/1.1");
    assert_eq!(
        s.header("host"),
        Some("node1.svc.example"),
        "node check_host wins"
    );
    assert_eq!(s.header("x-probe"), Some("roundel"));
    assert_eq!(s.header("connection"), Some("close"));
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let a = Backend::http(
        "127.0.0.33",
        Mode::Reply {
            status: 302,
            headers: vec![("Location".into(), "http://127.0.0.34:1/".into())],
            body: String::new(),
        },
    )
    .await;
    let mon = HealthMonitor::new();
    let r = mon
        .reconcile(&pools(&http_pool(", expect = [200]", &[&a], "")))
        .await;
    let h = health(&r.pools[0], 0);
    assert_eq!(h.detail().last_failure, Some(Failure::Status(302)));
    assert_eq!(a.hits(), 1);
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_load_becomes_the_effective_weight() {
    let a = Backend::http("127.0.0.35", Mode::header("X-Weight", "3")).await;
    let b = Backend::http("127.0.0.36", Mode::ok()).await;
    let zone = format!(
        r#"
[pools.hdr]
check = {{ http = {{ port = {pa}, weight_header = "X-Weight" }}, interval = "{INTERVAL_MS}ms", timeout = "{TIMEOUT_MS}ms" }}
policy = "weighted"
# The second node is checked on the other backend, which reports no header weight.
nodes = ["{ia}", {{ addr = "192.0.2.99", check_addr = "{ib}", check_port = {pb} }}]
[pools.body]
check = {{ http = {{ port = {pb}, weight_body = true }}, interval = "{INTERVAL_MS}ms", timeout = "{TIMEOUT_MS}ms" }}
nodes = [{{ addr = "{ib}", weight = 4 }}]
"#,
        pa = a.port(),
        ia = a.addr.ip(),
        pb = b.port(),
        ib = b.addr.ip()
    );
    b.set(Mode::status(200, "load report: 50% capacity"));
    let mon = HealthMonitor::new();
    let r = mon.reconcile(&pools(&zone)).await;
    let body_pool = r.pools.iter().find(|p| p.spec().key == "body").unwrap();
    let hdr_pool = r.pools.iter().find(|p| p.spec().key == "hdr").unwrap();
    assert_eq!(health(hdr_pool, 0).reported(), Some(Reported::Weight(3)));
    assert_eq!(health(body_pool, 0).reported(), Some(Reported::Percent(50)));
    assert_eq!(
        Reported::Percent(50).apply(body_pool.nodes()[0].spec.weight),
        2
    );

    // 0 takes the node out of answers while it stays up.
    a.set(Mode::header("X-Weight", "0"));
    wait_for(Duration::from_secs(2), || {
        health(hdr_pool, 0).reported() == Some(Reported::Weight(0))
    })
    .await
    .expect("weight 0 seen");
    assert_eq!(health(hdr_pool, 0).health(), Health::Up);
    assert_eq!(answer(hdr_pool), [1]);
    let ex = roundel::policy::explain(
        hdr_pool,
        &SelectInput {
            counter: 0,
            family: Family::V4,
            client: ClientKey {
                addr: "198.51.100.1".parse().unwrap(),
                prefix_len: 0,
                from_ecs: false,
            },
            now: Instant::now(),
        },
    );
    assert_eq!(ex.verdicts[0], roundel::policy::Verdict::WeightZero);
    // An unreadable value falls back to the configured weight and is noted.
    a.set(Mode::header("X-Weight", "lots"));
    wait_for(Duration::from_secs(2), || {
        health(hdr_pool, 0).reported().is_none()
    })
    .await
    .expect("fallback to configured weight");
    assert!(health(hdr_pool, 0).detail().weight_error.is_some());
    assert_eq!(answer(hdr_pool), [0, 1]);
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_node_is_down_from_the_first_answer() {
    let live = Backend::http("127.0.0.37", Mode::ok()).await;
    let dead = dead_addr("127.0.0.38").await;
    let zone = format!(
        r#"
[pools.web]
check = {{ http = {{ port = {} }} }}
nodes = ["{}", {{ addr = "192.0.2.2", check_addr = "{}", check_port = {} }}]
"#,
        live.port(),
        live.addr.ip(),
        dead.ip(),
        dead.port()
    );
    let mon = HealthMonitor::new();
    let t = Instant::now();
    let r = mon.reconcile(&pools(&zone)).await;
    println!("startup reconcile: {:?}", t.elapsed());
    assert_eq!(r.late, 0);
    let p = &r.pools[0];
    assert_eq!(health(p, 0).health(), Health::Up);
    assert_eq!(health(p, 1).health(), Health::Down);
    assert_eq!(
        answer(p),
        [0],
        "the very first answer leaves the dead node out"
    );
    mon.shutdown().await;
}

/// A check ends its connection with a reset (`SO_LINGER` 0), not the FIN exchange: the
/// backend's next read fails with "connection reset" instead of seeing end of file, and
/// neither side keeps a TIME_WAIT socket per check. Both check kinds that Roundel
/// connects itself: TCP (connect, then close) and plain HTTP (after the answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_end_with_a_reset_not_a_fin() {
    use std::io::{Read, Write};
    for (kind, ip) in [("tcp", "127.0.0.39"), ("http", "127.0.0.40")] {
        let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        let http = kind == "http";
        // The backend: accept one connection, answer it if HTTP, then read what comes next.
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4096];
            if http {
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "request head incomplete");
                    head.extend_from_slice(&buf[..n]);
                }
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                    .unwrap();
            }
            let _ = tx.send(s.read(&mut buf).map_err(|e| e.kind()));
        });
        let check = if http {
            format!("http = {{ port = {port}, path = \"/\" }}")
        } else {
            format!("tcp = {{ port = {port} }}")
        };
        let zone = format!(
            "[pools.t]\ncheck = {{ {check}, interval = \"1h\", timeout = \"2s\", rise = 1 }}\nnodes = [\"{ip}\"]\n"
        );
        let mon = HealthMonitor::new();
        let r = mon.reconcile(&pools(&zone)).await;
        assert_eq!(health(&r.pools[0], 0).health(), Health::Up, "{kind} check");
        let end = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("the backend saw no end of the connection within 10 s");
        assert_eq!(
            end,
            Err(std::io::ErrorKind::ConnectionReset),
            "{kind} check: the backend should see a reset (Ok(0) is an orderly close)"
        );
        mon.shutdown().await;
    }
}
