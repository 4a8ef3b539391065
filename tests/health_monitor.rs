//! HealthMonitor lifecycle against real backends: probe sharing, reconcile keeping and
//! stopping probes, admin overrides surviving reloads, startup, shutdown.

mod support_backends;

use std::sync::Arc;
use std::time::{Duration, Instant};

use roundel::health::HealthMonitor;
use roundel::node::{AdminState, Health};
use support_backends::{Backend, Mode, dead_addr, pools, wait_for};

const INTERVAL_MS: u64 = 200;

fn check(port: u16) -> String {
    format!("{{ http = {{ port = {port} }}, interval = \"{INTERVAL_MS}ms\", timeout = \"100ms\" }}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_probe_per_target_shared_by_two_pools() {
    let a = Backend::http("127.0.0.41", Mode::ok()).await;
    // Two pools, one named check and one identical inline check, same node: one probe.
    let zone = format!(
        r#"
[checks.c]
http = {{ port = {p} }}
interval = "{INTERVAL_MS}ms"
timeout = "100ms"
[pools.one]
check = "c"
nodes = ["{ip}"]
[pools.two]
check = {check}
policy = "weighted"
nodes = [{{ addr = "{ip}", weight = 5 }}, "192.0.2.1"]
"#,
        p = a.port(),
        ip = a.addr.ip(),
        check = check(a.port())
    );
    let specs = pools(&zone);
    let mon = HealthMonitor::new();
    let r = mon.reconcile(&specs).await;
    // One probe for 127.0.0.41, one for 192.0.2.1 (unreachable, TEST-NET).
    assert_eq!(r.started, 2);
    assert_eq!(mon.probe_count(), 2);
    assert!(Arc::ptr_eq(
        &r.pools[0].nodes()[0].health,
        &r.pools[1].nodes()[0].health
    ));
    // Its log/admin label names both pools.
    let users = r.pools[0].nodes()[0].health.detail().users;
    assert_eq!(users.len(), 2, "{users:?}");
    // Admin overrides are per pool, though.
    assert!(!Arc::ptr_eq(
        &r.pools[0].nodes()[0].admin,
        &r.pools[1].nodes()[0].admin
    ));

    // The backend sees one check per interval, not two: ten checks take about ten
    // intervals (two probes would take five). A busy machine only makes it slower.
    let h0 = a.hits();
    let took = wait_for(Duration::from_millis(INTERVAL_MS * 40), || {
        a.hits() >= h0 + 10
    })
    .await
    .expect("ten checks");
    assert!(
        took >= Duration::from_millis(INTERVAL_MS * 8),
        "ten checks in {took:?}: more than one probe"
    );
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_keeps_unchanged_probes_and_stops_removed_ones() {
    let a = Backend::http("127.0.0.42", Mode::ok()).await;
    let b = Backend::http_at(
        (std::net::Ipv4Addr::new(127, 0, 0, 43), a.port()).into(),
        Mode::ok(),
    )
    .await;
    let c = Backend::http_at(
        (std::net::Ipv4Addr::new(127, 0, 0, 44), a.port()).into(),
        Mode::ok(),
    )
    .await;
    let zone = |ips: &[std::net::IpAddr]| {
        let nodes: Vec<String> = ips.iter().map(|ip| format!("\"{ip}\"")).collect();
        format!(
            "[pools.web]\ncheck = {}\nnodes = [{}]\n",
            check(a.port()),
            nodes.join(", ")
        )
    };
    let mon = HealthMonitor::new();
    let r1 = mon
        .reconcile(&pools(&zone(&[a.addr.ip(), b.addr.ip()])))
        .await;
    assert_eq!((r1.started, r1.kept, r1.stopped), (2, 0, 0));
    let pool1 = &r1.pools[0];
    pool1.nodes()[0].admin.set_state(AdminState::Drain);
    // Let a few checks accumulate.
    wait_for(Duration::from_secs(2), || {
        pool1.nodes()[0].health.detail().checks >= 3
    })
    .await
    .expect("checks run");

    // Reload: a kept, b removed, c added.
    let r2 = mon
        .reconcile(&pools(&zone(&[a.addr.ip(), c.addr.ip()])))
        .await;
    assert_eq!((r2.started, r2.kept, r2.stopped), (1, 1, 1));
    let pool2 = &r2.pools[0];
    assert!(
        Arc::ptr_eq(&pool1.nodes()[0].health, &pool2.nodes()[0].health),
        "state kept"
    );
    assert!(
        pool2.nodes()[0].health.detail().checks >= 3,
        "counters not reset"
    );
    assert_eq!(
        pool2.nodes()[0].admin.state(),
        AdminState::Drain,
        "admin override kept"
    );
    assert_eq!(
        pool2.nodes()[1].health.health(),
        Health::Up,
        "new probe has its first result"
    );
    assert_eq!(mon.probe_count(), 2);

    // b's probe is stopped: no more requests (one in flight at most) while a, which
    // keeps being checked, is checked four more times.
    let (ha, hb) = (a.hits(), b.hits());
    wait_for(Duration::from_millis(INTERVAL_MS * 20), || {
        a.hits() >= ha + 4
    })
    .await
    .expect("a keeps being checked");
    assert!(
        b.hits() <= hb + 1,
        "removed probe still running: {} -> {}",
        hb,
        b.hits()
    );

    // A check whose timing changed runs anew, but the nodes keep their state.
    let changed = pools(
        &zone(&[a.addr.ip(), c.addr.ip()]).replace("timeout = \"100ms\"", "timeout = \"150ms\""),
    );
    let r3 = mon.reconcile(&changed).await;
    assert_eq!((r3.started, r3.kept, r3.carried, r3.stopped), (0, 0, 2, 0));
    assert!(Arc::ptr_eq(
        &pool2.nodes()[0].health,
        &r3.pools[0].nodes()[0].health
    ));
    assert_eq!(mon.probe_count(), 2);
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_reconcile_resolves_after_first_results_within_the_timeout() {
    let live = Backend::http("127.0.0.45", Mode::ok()).await;
    let hang = Backend::http_at(
        (std::net::Ipv4Addr::new(127, 0, 0, 46), live.port()).into(),
        Mode::Hang,
    )
    .await;
    let dead = dead_addr("127.0.0.47").await;
    let zone = format!(
        r#"
[pools.web]
check = {{ http = {{ port = {p} }}, interval = "1s", timeout = "300ms" }}
all_down = "servfail"
nodes = ["{l}", "{h}", {{ addr = "192.0.2.3", check_addr = "{d}", check_port = {dp} }}]
"#,
        p = live.port(),
        l = live.addr.ip(),
        h = hang.addr.ip(),
        d = dead.ip(),
        dp = dead.port()
    );
    let mon = HealthMonitor::new();
    let t = Instant::now();
    let r = mon.reconcile(&pools(&zone)).await;
    let took = t.elapsed();
    println!("startup reconcile with a hanging node: {took:?}");
    // Waited for the hanging node's timeout (its first result), and not much longer.
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(took < Duration::from_millis(300 + 400), "{took:?}");
    assert_eq!(r.late, 0);
    let states: Vec<Health> = r.pools[0]
        .nodes()
        .iter()
        .map(|n| n.health.health())
        .collect();
    assert_eq!(states, [Health::Up, Health::Down, Health::Down]);
    let reasons: Vec<String> = r.pools[0]
        .nodes()
        .iter()
        .map(|n| {
            n.health
                .detail()
                .last_failure
                .map(|f| f.to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(reasons, ["", "timeout", "connection refused"]);
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_checks_need_no_probe_task_and_are_up() {
    let mon = HealthMonitor::new();
    let r = mon
        .reconcile(&pools(
            "[pools.s]\ncheck = { none = true }\nnodes = [\"192.0.2.1\", \"192.0.2.2\"]\n",
        ))
        .await;
    assert!(
        r.pools[0]
            .nodes()
            .iter()
            .all(|n| n.health.health() == Health::Up)
    );
    assert_eq!(r.started, 2);
    assert_eq!(mon.probe_count(), 2);
    assert_eq!(mon.probe_tasks(), 0, "a none check started a probe task");
    mon.shutdown().await;
    assert_eq!(mon.probe_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_probe() {
    let a = Backend::http("127.0.0.48", Mode::ok()).await;
    let mon = HealthMonitor::new();
    mon.reconcile(&pools(&format!(
        "[pools.w]\ncheck = {}\nnodes = [\"{}\"]\n",
        check(a.port()),
        a.addr.ip()
    )))
    .await;
    mon.shutdown().await;
    assert_eq!(mon.probe_tasks(), 0, "a probe task outlived shutdown");
    assert_eq!(mon.probe_count(), 0);
    // And no request arrives while another monitor's probe, a clock, checks three times.
    let h = a.hits();
    let clock = Backend::http("127.0.0.63", Mode::ok()).await;
    let other = HealthMonitor::new();
    other
        .reconcile(&pools(&format!(
            "[pools.c]\ncheck = {}\nnodes = [\"{}\"]\n",
            check(clock.port()),
            clock.addr.ip()
        )))
        .await;
    let c0 = clock.hits();
    wait_for(Duration::from_millis(INTERVAL_MS * 20), || {
        clock.hits() >= c0 + 3
    })
    .await
    .expect("the clock probe runs");
    assert_eq!(a.hits(), h);
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_snapshot_reports_state_and_counters() {
    let a = Backend::http("127.0.0.49", Mode::ok()).await;
    let mon = HealthMonitor::new();
    mon.reconcile(&pools(&format!(
        "[pools.w]\ncheck = {}\nnodes = [\"{}\"]\n",
        check(a.port()),
        a.addr.ip()
    )))
    .await;
    let s = mon.probes();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].health, Health::Up);
    assert_eq!(s[0].key.target.addr, a.addr.ip());
    assert!(s[0].srtt.is_some());
    assert!(s[0].detail.checks >= 1);
    assert_eq!(s[0].detail.transitions, 1);
    mon.shutdown().await;
}

/// Editing only a check's timing or thresholds keeps each node's state, history and
/// counters: no node goes back to unknown, none comes up on one success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timing_edits_keep_node_state() {
    let a = Backend::http("127.0.0.61", Mode::ok()).await;
    let zone = |interval: &str, rise: u32| {
        format!(
            "[pools.w]\ncheck = {{ http = {{ port = {} }}, interval = \"{interval}\", timeout = \"100ms\", rise = {rise} }}\nnodes = [\"{}\"]\n",
            a.port(),
            a.addr.ip()
        )
    };
    let mon = HealthMonitor::new();
    let r1 = mon.reconcile(&pools(&zone("200ms", 2))).await;
    let node = r1.pools[0].nodes()[0].health.clone();
    assert_eq!(node.health(), Health::Up);
    wait_for(Duration::from_secs(3), || node.detail().checks >= 3)
        .await
        .expect("checks run");
    let before = node.detail();

    let r2 = mon.reconcile(&pools(&zone("300ms", 3))).await;
    assert_eq!((r2.started, r2.carried, r2.stopped), (0, 1, 0));
    let after = &r2.pools[0].nodes()[0].health;
    assert!(Arc::ptr_eq(&node, after), "state replaced");
    assert_eq!(after.health(), Health::Up);
    let d = after.detail();
    assert!(d.checks >= before.checks, "counters reset");
    assert_eq!(d.transitions, before.transitions, "history rewritten");
    assert_eq!(mon.probe_tasks(), 1, "the old task still runs");
    // The new timing is in force: checks go on.
    wait_for(Duration::from_secs(3), || {
        after.detail().checks >= d.checks + 2
    })
    .await
    .expect("the new check runs");
    mon.shutdown().await;
}

/// When the probe itself changes (another port), the node keeps its state and the new
/// check takes over with `rise`: a node that was down does not come up on one success,
/// and when it comes up it gets its slow start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_changes_apply_rise_and_slow_start() {
    let up = Backend::http("127.0.0.62", Mode::ok()).await;
    let dead = dead_addr("127.0.0.62").await;
    let zone = |port: u16| {
        format!(
            "[pools.w]\ncheck = {{ http = {{ port = {port} }}, interval = \"200ms\", timeout = \"100ms\", rise = 3, fall = 1 }}\n\
             slow_start = \"10s\"\nnodes = [\"127.0.0.62\"]\n"
        )
    };
    let mon = HealthMonitor::new();
    let r1 = mon.reconcile(&pools(&zone(dead.port()))).await;
    assert_eq!(r1.pools[0].nodes()[0].health.health(), Health::Down);

    // The new check passes, but one success is not rise = 3.
    let r2 = mon.reconcile(&pools(&zone(up.port()))).await;
    assert_eq!((r2.started, r2.carried, r2.stopped), (0, 1, 0));
    let node = r2.pools[0].nodes()[0].health.clone();
    assert_eq!(node.health(), Health::Down, "came up without rise");
    let took = wait_for(Duration::from_secs(5), || node.health() == Health::Up)
        .await
        .expect("comes up after rise successes");
    assert!(
        node.detail().ok_run >= 3,
        "up after {} successes ({took:?})",
        node.detail().ok_run
    );
    assert!(node.up_since().is_some(), "no slow start after coming back");
    mon.shutdown().await;
}
