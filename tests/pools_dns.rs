//! Health-aware pools end to end: real HTTP backends on 127.0.0.x, Roundel serving a zone
//! with pools, queries over real UDP. Backends are stopped to make nodes fail.
//!
//! Each test uses its own 127.0.0.x range so that tests can run in parallel.

mod common;
mod support_backends;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::client::{self, Q, Transport};
use common::roundel_target::TestServer;
use support_backends::{Backend, Mode};

const A: u16 = 1;
const AAAA: u16 = 28;
const NOERROR: u8 = 0;
const SERVFAIL: u8 = 2;
const EDNS_CLIENT_SUBNET: u16 = 8;

/// A zone `lb.test.` with `extra` (checks, pools, names) appended, in a fresh directory.
fn zone_dir(tag: &str, extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("roundel-pools-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "origin = \"lb.test.\"\nttl = 300\n[soa]\nmname = \"ns1\"\nrname = \"hostmaster\"\nminimum = 30\n\
         [names.\"@\"]\nNS = \"ns1\"\n[names.ns1]\nA = \"192.0.2.53\"\n{extra}"
    );
    std::fs::write(dir.join("lb.test.toml"), text).unwrap();
    dir
}

/// One answer: rcode, answer TTLs and the data of the A/AAAA records, in order.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    rcode: u8,
    ttl: Option<u32>,
    addrs: Vec<String>,
    cnames: Vec<String>,
    soa_in_authority: bool,
    ecs_scope: Option<u8>,
}

fn ask(server: &TestServer, q: &Q) -> Answer {
    let out = client::exchange(server.udp, Transport::Udp, q);
    let m = out
        .message()
        .unwrap_or_else(|| panic!("no answer to {}", q.describe()));
    let ecs_scope = m
        .opt
        .as_ref()
        .and_then(|o| o.options.iter().find(|(c, _)| *c == EDNS_CLIENT_SUBNET))
        .map(|(_, d)| d[3]);
    Answer {
        rcode: m.header_rcode,
        ttl: m
            .answer
            .iter()
            .find(|r| r.rtype == A || r.rtype == AAAA)
            .map(|r| r.ttl),
        addrs: m
            .answer
            .iter()
            .filter(|r| r.rtype == A || r.rtype == AAAA)
            .map(|r| r.rdata_text.clone())
            .collect(),
        cnames: m
            .answer
            .iter()
            .filter(|r| r.rtype == 5)
            .map(|r| r.rdata_text.clone())
            .collect(),
        soa_in_authority: m.authority.iter().any(|r| r.rtype == 6),
        ecs_scope,
    }
}

fn addrs(server: &TestServer, name: &str) -> Vec<String> {
    ask(server, &Q::new(name, A)).addrs
}

/// Polls `name` every 20 ms until `cond` holds on its addresses or `bound` passes.
async fn wait_answer(
    server: &TestServer,
    name: &str,
    bound: Duration,
    cond: impl Fn(&[String]) -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() <= bound {
        if cond(&addrs(server, name)) {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A free port on `ip`, to give every backend of a test the same port.
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn backends(ips: &[&str], port: u16, mode: Mode) -> Vec<Backend> {
    let mut out = Vec::new();
    for ip in ips {
        out.push(Backend::http_at(SocketAddr::new(ip.parse().unwrap(), port), mode.clone()).await);
    }
    out
}

fn check(port: u16, interval_ms: u32, timeout_ms: u32) -> String {
    format!(
        "[checks.web]\nhttp = {{ port = {port}, path = \"/health\" }}\ninterval = \"{interval_ms}ms\"\ntimeout = \"{timeout_ms}ms\"\nfall = 2\nrise = 2\n"
    )
}

fn set(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_leaves_within_the_detection_window_and_returns_after_rise() {
    let ips = ["127.0.0.41", "127.0.0.42", "127.0.0.43"];
    let port = free_port(ips[0]);
    let mut nodes = backends(&ips, port, Mode::ok()).await;
    let dir = zone_dir(
        "kill",
        &format!(
            "{}[pools.www]\ncheck = \"web\"\nttl = 5\nnodes = [\"127.0.0.41\", \"127.0.0.42\", \"127.0.0.43\"]\n",
            check(port, 200, 100)
        ),
    );
    let server = TestServer::start(&dir);

    // Rotation: all three, each first in turn. Each UDP worker rotates on its own counter
    // (node::RotationCounter) and the kernel spreads these fresh-port queries over the
    // workers, so ask 2 x workers + 1 times: some worker then answers three in a row.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut firsts: Vec<String> = (0..2 * workers + 1)
        .map(|_| addrs(&server, "www.lb.test")[0].clone())
        .collect();
    firsts.sort();
    firsts.dedup();
    assert_eq!(
        firsts,
        strings(&ips),
        "every node leads one answer in three of a worker's answers"
    );
    assert_eq!(set(&addrs(&server, "www.lb.test")), strings(&ips));

    // Kill one: gone within interval x fall + timeout (500 ms) plus a margin.
    nodes[1].stop().await;
    let gone = wait_answer(&server, "www.lb.test", Duration::from_secs(3), |a| {
        !a.contains(&ips[1].to_string())
    })
    .await;
    let gone = gone.expect("the dead node must leave the answers");
    assert!(
        gone <= Duration::from_millis(900),
        "left after {gone:?}, bound 500 ms + 400 ms margin"
    );
    for _ in 0..20 {
        assert_eq!(
            set(&addrs(&server, "www.lb.test")),
            strings(&[ips[0], ips[2]])
        );
    }

    // Restart: back only after `rise` (2) successful checks, i.e. not before one more
    // interval has passed, and within rise x interval + margin.
    nodes[1].restart().await;
    let back = wait_answer(&server, "www.lb.test", Duration::from_secs(3), |a| {
        a.contains(&ips[1].to_string())
    })
    .await;
    let back = back.expect("the node must return");
    assert!(
        back >= Duration::from_millis(150),
        "back after {back:?}: sooner than two checks"
    );
    assert!(back <= Duration::from_millis(900), "back after {back:?}");
    println!("detection {gone:?}, recovery {back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_dead_at_startup_is_never_served() {
    let ips = ["127.0.0.45", "127.0.0.46"];
    let port = free_port(ips[0]);
    let _alive = backends(&ips[..1], port, Mode::ok()).await;
    // 127.0.0.46 has nothing listening: connection refused.
    let dir = zone_dir(
        "startdead",
        &format!(
            "{}[pools.www]\ncheck = \"web\"\nnodes = [\"127.0.0.45\", \"127.0.0.46\"]\n",
            check(port, 500, 300)
        ),
    );
    let server = TestServer::start(&dir);
    for _ in 0..50 {
        assert_eq!(addrs(&server, "www.lb.test"), strings(&[ips[0]]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hanging_failing_and_wrong_body_nodes_are_down_and_answers_stay_fast() {
    let port = free_port("127.0.0.51");
    let _good = backends(&["127.0.0.51"], port, Mode::ok()).await;
    let _hang = backends(&["127.0.0.52"], port, Mode::Hang).await;
    let _err = backends(&["127.0.0.53"], port, Mode::status(500, "ok")).await;
    let _body = backends(&["127.0.0.54"], port, Mode::status(200, "maintenance")).await;
    let extra = format!(
        "[checks.web]\nhttp = {{ port = {port}, path = \"/health\", body = \"ok\" }}\ninterval = \"300ms\"\ntimeout = \"200ms\"\n\
         [pools.www]\ncheck = \"web\"\nnodes = [\"127.0.0.51\", \"127.0.0.52\", \"127.0.0.53\", \"127.0.0.54\"]\n"
    );
    let server = TestServer::start(zone_dir("bad", &extra));
    for _ in 0..30 {
        let t = Instant::now();
        assert_eq!(addrs(&server, "www.lb.test"), strings(&["127.0.0.51"]));
        // A hanging backend must never delay an answer: answers come from memory.
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "answer took {:?}",
            t.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_robin_is_even_and_weighted_follows_weights() {
    let ips = ["127.0.0.61", "127.0.0.62", "127.0.0.63"];
    let port = free_port(ips[0]);
    let _nodes = backends(&ips, port, Mode::ok()).await;
    let extra = format!(
        "{}[pools.rr]\ncheck = \"web\"\nnodes = [\"127.0.0.61\", \"127.0.0.62\", \"127.0.0.63\"]\n\
         [pools.w]\ncheck = \"web\"\npolicy = \"weighted\"\nmax_answers = 1\nnodes = [{{ addr = \"127.0.0.61\", weight = 1 }}, {{ addr = \"127.0.0.62\", weight = 3 }}]\n",
        check(port, 500, 300)
    );
    let server = TestServer::start(zone_dir("rr", &extra));

    let mut first: HashMap<String, u32> = HashMap::new();
    for _ in 0..300 {
        let a = addrs(&server, "rr.lb.test");
        assert_eq!(a.len(), 3);
        *first.entry(a[0].clone()).or_default() += 1;
    }
    // Each UDP worker rotates on its own counter (policy::RotationCounter) and every query
    // comes from a fresh source port, so the kernel spreads them over the workers: each
    // worker leads with each node equally often (to within one), so the totals are within
    // one per worker of exact.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    for ip in ips {
        assert!(
            first[ip].abs_diff(100) <= workers,
            "round robin must lead with each node as often (to within one per worker): {first:?}"
        );
    }

    let mut share: HashMap<String, u32> = HashMap::new();
    for _ in 0..400 {
        let a = addrs(&server, "w.lb.test");
        assert_eq!(a.len(), 1, "max_answers = 1");
        *share.entry(a[0].clone()).or_default() += 1;
    }
    let heavy = share["127.0.0.62"] as f64 / 400.0;
    assert!(
        (0.70..=0.80).contains(&heavy),
        "weight 3 of 4 must get about 75%, got {share:?}"
    );
}

fn ecs_query(name: &str, subnet: [u8; 3]) -> Q {
    let mut data = vec![0, 1, 24, 0];
    data.extend_from_slice(&subnet);
    Q::new(name, A).option(EDNS_CLIENT_SUBNET, &data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_hash_is_sticky_and_moves_only_the_clients_of_a_dead_node() {
    let ips = ["127.0.0.71", "127.0.0.72", "127.0.0.73", "127.0.0.74"];
    let port = free_port(ips[0]);
    let mut nodes = backends(&ips, port, Mode::ok()).await;
    let extra = format!(
        "{}[pools.sticky]\ncheck = \"web\"\npolicy = \"client-hash\"\nmax_answers = 1\nnodes = [\"127.0.0.71\", \"127.0.0.72\", \"127.0.0.73\", \"127.0.0.74\"]\n",
        check(port, 200, 100)
    );
    let server = TestServer::start(zone_dir("hash", &extra));

    let clients: Vec<[u8; 3]> = (0..64u8).map(|i| [198, 51, i]).collect();
    let before: Vec<String> = clients
        .iter()
        .map(|c| {
            let a = ask(&server, &ecs_query("sticky.lb.test", *c));
            assert_eq!(
                a.ecs_scope,
                Some(24),
                "the answer depends on the /24: scope 24 echoed"
            );
            a.addrs[0].clone()
        })
        .collect();
    // Sticky: the same client gets the same node every time.
    for (c, node) in clients.iter().zip(&before) {
        for _ in 0..3 {
            assert_eq!(
                &ask(&server, &ecs_query("sticky.lb.test", *c)).addrs[0],
                node
            );
        }
    }
    let used: std::collections::HashSet<&String> = before.iter().collect();
    assert!(
        used.len() >= 3,
        "64 clients should spread over the nodes: {used:?}"
    );

    // Kill the node of client 0: only its clients move; the others stay.
    let victim = before[0].clone();
    let i = ips.iter().position(|ip| *ip == victim).unwrap();
    nodes[i].stop().await;
    wait_answer(&server, "sticky.lb.test", Duration::from_secs(3), |_| {
        ask(&server, &ecs_query("sticky.lb.test", clients[0])).addrs[0] != victim
    })
    .await
    .expect("the victim's clients move");
    for (c, node) in clients.iter().zip(&before) {
        let now = ask(&server, &ecs_query("sticky.lb.test", *c)).addrs[0].clone();
        if *node == victim {
            assert_ne!(now, victim);
        } else {
            assert_eq!(&now, node, "a client of a live node must not move");
        }
    }
    // When it returns, its clients move back.
    nodes[i].restart().await;
    wait_answer(&server, "sticky.lb.test", Duration::from_secs(3), |_| {
        ask(&server, &ecs_query("sticky.lb.test", clients[0])).addrs[0] == victim
    })
    .await
    .expect("the clients move back");
    for (c, node) in clients.iter().zip(&before) {
        assert_eq!(
            &ask(&server, &ecs_query("sticky.lb.test", *c)).addrs[0],
            node
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fastest_orders_by_measured_round_trip() {
    let port = free_port("127.0.0.81");
    let _slow = backends(&["127.0.0.81"], port, Mode::Slow(Duration::from_millis(80))).await;
    let _fast = backends(&["127.0.0.82"], port, Mode::ok()).await;
    let _mid = backends(&["127.0.0.83"], port, Mode::Slow(Duration::from_millis(30))).await;
    let extra = format!(
        "{}[pools.fast]\ncheck = \"web\"\npolicy = \"fastest\"\nnodes = [\"127.0.0.81\", \"127.0.0.82\", \"127.0.0.83\"]\n",
        check(port, 200, 150)
    );
    let server = TestServer::start(zone_dir("fastest", &extra));
    // Let a few checks feed the smoothed RTT.
    let ordered = wait_answer(&server, "fast.lb.test", Duration::from_secs(4), |a| {
        a == strings(&["127.0.0.82", "127.0.0.83", "127.0.0.81"])
    })
    .await;
    assert!(
        ordered.is_some(),
        "fastest first: got {:?}",
        addrs(&server, "fast.lb.test")
    );
    for _ in 0..10 {
        assert_eq!(
            addrs(&server, "fast.lb.test"),
            strings(&["127.0.0.82", "127.0.0.83", "127.0.0.81"])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tiers_fail_over_and_back() {
    let ips = ["127.0.0.91", "127.0.0.92", "127.0.0.93"];
    let port = free_port(ips[0]);
    let mut nodes = backends(&ips, port, Mode::ok()).await;
    let extra = format!(
        "{}[pools.app]\ncheck = \"web\"\nmin_healthy = 2\nnodes = [\"127.0.0.91\", \"127.0.0.92\", {{ addr = \"127.0.0.93\", tier = 2 }}]\n",
        check(port, 200, 100)
    );
    let server = TestServer::start(zone_dir("tiers", &extra));
    assert_eq!(
        set(&addrs(&server, "app.lb.test")),
        strings(&ips[..2]),
        "tier 1 while it has 2 healthy nodes"
    );
    nodes[0].stop().await;
    wait_answer(&server, "app.lb.test", Duration::from_secs(3), |a| {
        a == strings(&[ips[2]])
    })
    .await
    .expect("tier 2 takes over when tier 1 falls below min_healthy");
    nodes[0].restart().await;
    wait_answer(&server, "app.lb.test", Duration::from_secs(3), |a| {
        set(a) == strings(&ips[..2])
    })
    .await
    .expect("back to tier 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_down_modes_and_degraded_ttl() {
    let ips = ["127.0.0.101", "127.0.0.102"];
    let port = free_port(ips[0]);
    let mut nodes = backends(&ips, port, Mode::ok()).await;
    let mut extra = check(port, 200, 100);
    for mode in ["serve-all", "empty", "servfail", "last-healthy"] {
        let name = mode.replace('-', "");
        extra += &format!(
            "[pools.{name}]\ncheck = \"web\"\nttl = 20\ndegraded_ttl = 5\nall_down = \"{mode}\"\nnodes = [\"127.0.0.101\", \"127.0.0.102\"]\n"
        );
    }
    let server = TestServer::start(zone_dir("alldown", &extra));
    let a = ask(&server, &Q::new("serveall.lb.test", A));
    assert_eq!(
        (a.rcode, a.ttl, set(&a.addrs)),
        (NOERROR, Some(20), strings(&ips))
    );

    // One down: degraded TTL.
    nodes[1].stop().await;
    wait_answer(&server, "serveall.lb.test", Duration::from_secs(3), |a| {
        a == strings(&[ips[0]])
    })
    .await
    .expect("node 2 leaves");
    let a = ask(&server, &Q::new("serveall.lb.test", A));
    assert_eq!(a.ttl, Some(5), "degraded TTL while a node is down");
    // last-healthy remembers the last set it answered while healthy.
    assert_eq!(addrs(&server, "lasthealthy.lb.test"), strings(&[ips[0]]));

    // All down.
    nodes[0].stop().await;
    wait_answer(&server, "serveall.lb.test", Duration::from_secs(3), |a| {
        set(a) == strings(&ips)
    })
    .await
    .expect("serve-all fails open with every node");
    for _ in 0..10 {
        let all = ask(&server, &Q::new("serveall.lb.test", A));
        assert_eq!(
            (all.rcode, set(&all.addrs)),
            (NOERROR, strings(&ips)),
            "no flapping while all checks fail"
        );
        let empty = ask(&server, &Q::new("empty.lb.test", A));
        assert_eq!(
            (empty.rcode, empty.addrs.len(), empty.soa_in_authority),
            (NOERROR, 0, true),
            "empty: NODATA with SOA"
        );
        let sf = ask(&server, &Q::new("servfail.lb.test", A));
        assert_eq!((sf.rcode, sf.addrs.len()), (SERVFAIL, 0));
        assert_eq!(
            addrs(&server, "lasthealthy.lb.test"),
            strings(&[ips[0]]),
            "last-healthy keeps the last healthy set"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_start_ramps_a_returning_node() {
    let ips = ["127.0.0.111", "127.0.0.112"];
    let port = free_port(ips[0]);
    let mut nodes = backends(&ips, port, Mode::ok()).await;
    let extra = format!(
        "{}[pools.ramp]\ncheck = \"web\"\npolicy = \"weighted\"\nmax_answers = 1\nslow_start = \"4s\"\nnodes = [\"127.0.0.111\", \"127.0.0.112\"]\n",
        check(port, 200, 100)
    );
    let server = TestServer::start(zone_dir("ramp", &extra));
    nodes[1].stop().await;
    // One answer can be .111 by chance (one address of two): wait for ten in a row.
    wait_answer(&server, "ramp.lb.test", Duration::from_secs(3), |_| {
        (0..10).all(|_| addrs(&server, "ramp.lb.test") == strings(&[ips[0]]))
    })
    .await
    .expect("down");
    for _ in 0..20 {
        assert_eq!(addrs(&server, "ramp.lb.test"), strings(&[ips[0]]));
    }
    nodes[1].restart().await;
    wait_answer(&server, "ramp.lb.test", Duration::from_secs(3), |a| {
        a == strings(&[ips[1]])
    })
    .await
    .expect("it comes back");
    // Early in the ramp it gets a small share; at full weight it gets half.
    let share = |n: usize| {
        (0..n)
            .filter(|_| addrs(&server, "ramp.lb.test")[0] == ips[1])
            .count() as f64
            / n as f64
    };
    let early = share(200);
    assert!(early < 0.35, "early share {early} must be well below 50%");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let late = share(400);
    assert!(
        (0.40..=0.60).contains(&late),
        "after the ramp the share is about 50%, got {late}"
    );
    println!("slow start: share {early:.2} early, {late:.2} after the ramp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn least_load_uses_the_weight_a_backend_reports() {
    let port = free_port("127.0.0.121");
    let light = backends(&["127.0.0.121"], port, Mode::header("X-Weight", "3")).await;
    let heavy = backends(&["127.0.0.122"], port, Mode::header("X-Weight", "1")).await;
    let extra = format!(
        "[checks.agent]\nhttp = {{ port = {port}, path = \"/health\", weight_header = \"X-Weight\" }}\ninterval = \"200ms\"\ntimeout = \"100ms\"\n\
         [pools.load]\ncheck = \"agent\"\npolicy = \"weighted\"\nmax_answers = 1\nnodes = [\"127.0.0.121\", \"127.0.0.122\"]\n"
    );
    let server = TestServer::start(zone_dir("load", &extra));
    let share = |n: usize| {
        (0..n)
            .filter(|_| addrs(&server, "load.lb.test")[0] == "127.0.0.121")
            .count() as f64
            / n as f64
    };
    let s = share(400);
    assert!(
        (0.68..=0.82).contains(&s),
        "reported weights 3:1 give about 75%, got {s}"
    );
    // Reporting 0 takes the node out while it stays up.
    heavy[0].set(Mode::header("X-Weight", "0"));
    light[0].set(Mode::header("X-Weight", "3"));
    wait_answer(&server, "load.lb.test", Duration::from_secs(3), |_| {
        share(20) == 1.0
    })
    .await
    .expect("weight 0 takes the node out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cname_to_a_pool_and_mixed_families() {
    let port = free_port("127.0.0.131");
    let _v4 = backends(&["127.0.0.131"], port, Mode::ok()).await;
    let _v6 = Backend::http_at(SocketAddr::new("::1".parse().unwrap(), port), Mode::ok()).await;
    let extra = format!(
        "{}[pools.web]\ncheck = \"web\"\nnodes = [\"127.0.0.131\", \"::1\"]\n[names.www]\nCNAME = \"web\"\n",
        check(port, 500, 300)
    );
    let server = TestServer::start(zone_dir("cname", &extra));
    let a = ask(&server, &Q::new("www.lb.test", A));
    assert_eq!(
        (a.rcode, a.cnames.clone(), a.addrs.clone()),
        (
            NOERROR,
            strings(&["web.lb.test."]),
            strings(&["127.0.0.131"])
        )
    );
    let aaaa = ask(&server, &Q::new("www.lb.test", AAAA));
    assert_eq!(
        (aaaa.cnames.clone(), aaaa.addrs.clone()),
        (strings(&["web.lb.test."]), strings(&["::1"]))
    );
    // Over TCP too.
    let out = client::exchange(server.tcp, Transport::Tcp, &Q::new("web.lb.test", AAAA));
    let m = out.message().expect("TCP answer");
    assert_eq!(
        m.answer
            .iter()
            .map(|r| r.rdata_text.clone())
            .collect::<Vec<_>>(),
        strings(&["::1"])
    );
}
