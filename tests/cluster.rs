//! Cluster mode against a real etcd (started here on loopback ports, killed by PID):
//! several Roundel instances in-process, each probing from its own 127.0.1.x source
//! address, and real HTTP backends on 127.0.0.x that count the checks they receive.
//!
//! Timings: checks every 500 ms (fall 2, rise 2, timeout 300 ms), lease TTL 2 s, grace
//! 4 s. Measured figures are printed (`cargo test --test cluster -- --nocapture`).

mod cluster_support;
mod ops_support;

use std::time::{Duration, Instant};

use cluster_support::*;

/// Four backends on 127.0.`net`.1-4, sharing one port.
fn backends(net: u8) -> Vec<Backend> {
    let first = Backend::start(&format!("127.0.{net}.1"), 0);
    let port = first.addr.port();
    let mut v = vec![first];
    for i in 2..=4 {
        v.push(Backend::start(&format!("127.0.{net}.{i}"), port));
    }
    v
}

fn refs(b: &[Backend]) -> Vec<&Backend> {
    b.iter().collect()
}

/// `n` instances named ns1.. probing from 127.0.`src_net`.1..
fn instances(
    etcd: &Etcd,
    zones: &std::path::Path,
    n: usize,
    observers: usize,
    src_net: u8,
) -> Vec<Instance> {
    (1..=n)
        .map(|i| {
            Instance::start(
                zones,
                cluster_config(
                    etcd,
                    &format!("ns{i}"),
                    &format!("127.0.{src_net}.{i}"),
                    observers,
                ),
            )
        })
        .collect()
}

/// Waits until every instance is joined and sees `n` members.
fn converge(all: &[Instance], n: usize) -> Duration {
    wait_until(Duration::from_secs(15), || {
        all.iter().all(|i| {
            let c = i.cluster();
            c["mode"] == "joined" && c["members"].as_array().unwrap().len() == n
        })
    })
    .unwrap_or_else(|| panic!("instances did not converge: {}", all[0].cluster()))
}

/// Checks per second each backend receives over `window`, after the probe share has
/// settled.
/// For each instance, how long after `start` `cond` first held for it (`None` if not
/// within `bound`, polled until all have it or the bound passes).
fn when_each(
    all: &[Instance],
    start: Instant,
    bound: Duration,
    cond: impl Fn(&Instance) -> bool,
) -> Vec<Option<Duration>> {
    let mut at = vec![None; all.len()];
    wait_until(bound, || {
        for (k, i) in all.iter().enumerate() {
            if at[k].is_none() && cond(i) {
                at[k] = Some(start.elapsed());
            }
        }
        at.iter().all(Option::is_some)
    });
    at
}

fn check_rate(backends: &[Backend], window: Duration) -> Vec<f64> {
    // One interval plus the lease TTL lets every probe settle on its observers.
    std::thread::sleep(Duration::from_millis(2500));
    let since = Instant::now();
    std::thread::sleep(window);
    backends
        .iter()
        .map(|b| b.count_since(since) as f64 / window.as_secs_f64())
        .collect()
}

/// Test 1: the check load on a backend is `observers / interval`, whatever the number
/// of instances.
#[test]
fn check_load_is_observers_per_interval() {
    let etcd = Etcd::start();
    let mut bs = backends(11);
    let z = zone_dir();
    zones(z.path(), bs[0].addr.port(), &[&refs(&bs)]);
    let window = Duration::from_secs(4);
    let mut rows = Vec::new();
    for (n, observers) in [(1usize, 3usize), (3, 2), (5, 3)] {
        let all = instances(&etcd, z.path(), n, observers, 111);
        converge(&all, n);
        let rates = check_rate(&bs, window);
        let expect = observers.min(n) as f64 / 0.5;
        eprintln!(
            "check load: {n} instance(s), observers {observers}: {rates:?} checks/s per backend (expected {expect}, {} without cluster mode)",
            n as f64 / 0.5
        );
        for r in &rates {
            assert!(
                (r - expect).abs() <= expect * 0.25 + 0.3,
                "{n} instances: {rates:?}, expected {expect}/s"
            );
        }
        // Detection time with this many instances: a backend killed, gone everywhere.
        let every = ips(&refs(&bs));
        assert!(
            wait_until(Duration::from_secs(5), || all
                .iter()
                .all(|i| i.answer(0) == every))
            .is_some()
        );
        let dead = bs[3].addr.ip().to_string();
        let start = Instant::now();
        bs[3].stop();
        let gone = wait_until(Duration::from_secs(5), || {
            all.iter().all(|i| !i.answer(0).contains(&dead))
        });
        eprintln!("detection: {n} instance(s): gone from all after {gone:?}");
        assert!(
            gone.is_some_and(|g| g <= Duration::from_secs(2)),
            "{gone:?}"
        );
        bs[3].restart();
        assert!(
            wait_until(Duration::from_secs(5), || all
                .iter()
                .all(|i| i.answer(0) == every))
            .is_some()
        );
        let _ = start;
        rows.push((n, rates, gone));
        drop(all);
    }
    eprintln!("instances | checks/s per backend | detection");
    for (n, rates, gone) in rows {
        eprintln!("{n} | {rates:?} | {gone:?}");
    }
}

/// Test 2: a killed backend leaves the answers of every instance within 2 s.
#[test]
fn killed_backend_leaves_every_instance_within_2s() {
    let etcd = Etcd::start();
    let mut bs = backends(12);
    let z = zone_dir();
    zones(z.path(), bs[0].addr.port(), &[&refs(&bs)]);
    let all = instances(&etcd, z.path(), 3, 3, 112);
    converge(&all, 3);
    let every = ips(&refs(&bs));
    let ok = wait_until(Duration::from_secs(5), || {
        all.iter().all(|i| i.answer(0) == every)
    });
    assert!(ok.is_some(), "all four up everywhere");
    let dead = bs[1].addr.ip().to_string();
    let start = Instant::now();
    bs[1].stop();
    let gone = when_each(&all, start, Duration::from_secs(5), |i| {
        !i.answer(0).contains(&dead)
    });
    eprintln!("detection: backend killed, gone from each instance after {gone:?}");
    for (k, g) in gone.iter().enumerate() {
        let g = g.unwrap_or_else(|| panic!("ns{} still answers {dead}", k + 1));
        assert!(g <= Duration::from_secs(2), "ns{}: {g:?}", k + 1);
    }
    // It comes back everywhere too.
    bs[1].restart();
    let back = wait_until(Duration::from_secs(5), || {
        all.iter().all(|i| i.answer(0) == every)
    });
    eprintln!("recovery: back on every instance after {back:?}");
    assert!(back.is_some());
}

/// Test 3: a drain through one instance is obeyed by the others within 1 s and survives
/// a restart of every instance.
#[test]
fn drain_through_one_instance_reaches_all_within_1s_and_survives_restart() {
    let etcd = Etcd::start();
    let bs = backends(13);
    let z = zone_dir();
    zones(z.path(), bs[0].addr.port(), &[&refs(&bs)]);
    let all = instances(&etcd, z.path(), 3, 3, 113);
    converge(&all, 3);
    let every = ips(&refs(&bs));
    assert!(
        wait_until(Duration::from_secs(5), || all
            .iter()
            .all(|i| i.answer(0) == every))
        .is_some()
    );
    let drained = bs[2].addr.ip().to_string();
    // Let B and C serve the node, so their answers count for "safe to stop".
    for i in &all {
        assert!(i.answer(0).contains(&drained));
    }
    // ns3 keeps serving the node and ns1 does not: ns1's `cached_until` comes to cover
    // ns3's answers (5 s TTL), which ns1's own (served before `t0`) cannot reach.
    let t0 = std::time::SystemTime::now();
    let beyond = roundel::admin::time::rfc3339(t0 + Duration::from_secs(6));
    let node_path = format!("/api/v1/pools/p0.cl.test./nodes/{drained}");
    let node_on = |i: &Instance| -> serde_json::Value {
        let (_, body) = ops_support::http_get_blocking(i.admin, &node_path).unwrap();
        serde_json::from_str(&body).unwrap()
    };
    let covered = wait_until(Duration::from_secs(5), || {
        let _ = all[2].answer(0);
        node_on(&all[0])["cached_until"].as_str().unwrap() >= beyond.as_str()
    });
    eprintln!("ns1's cached_until covers ns3's answers after {covered:?}");
    assert!(covered.is_some(), "{}", node_on(&all[0]));
    let start = Instant::now();
    let (st, body) = post(
        all[0].admin,
        &format!("/api/v1/pools/p0.cl.test./nodes/{drained}/drain"),
    );
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains("safe to stop after that"),
        "not safe to stop while ns3's answers may be cached: {body}"
    );
    let took = when_each(&all, start, Duration::from_secs(3), |i| {
        !i.answer(0).contains(&drained)
    });
    eprintln!("drain through ns1 obeyed after {took:?}");
    for (k, t) in took.iter().enumerate() {
        let t = t.unwrap_or_else(|| panic!("ns{} still hands out {drained}", k + 1));
        assert!(t <= Duration::from_secs(1), "ns{}: {t:?}", k + 1);
    }
    // ns2 sees the override, and the node is not yet safe to stop there either.
    let node = node_on(&all[1]);
    assert_eq!(node["safe_to_stop"], false, "{node}");
    assert_eq!(node["admin"], "drain", "{node}");
    drop(all);
    // Every instance restarts: the drain is still in force from the first answer.
    let all = instances(&etcd, z.path(), 3, 3, 113);
    for i in &all {
        let a = i.answer(0);
        assert!(
            !a.contains(&drained),
            "{} hands out the drained node after a restart: {a:?}",
            i.name
        );
        assert_eq!(a.len(), 3, "{a:?}");
    }
    // And `ready` through another instance brings it back everywhere.
    let (st, body) = post(
        all[2].admin,
        &format!("/api/v1/pools/p0.cl.test./nodes/{drained}/ready"),
    );
    assert_eq!(st, 200, "{body}");
    assert!(
        wait_until(Duration::from_secs(1), || all
            .iter()
            .all(|i| i.answer(0) == every))
        .is_some()
    );
}

/// Test 4: an instance that cannot reach one backend is outvoted.
#[test]
fn a_checker_that_cannot_reach_a_backend_is_outvoted() {
    let etcd = Etcd::start();
    let bs = backends(14);
    let z = zone_dir();
    zones(z.path(), bs[0].addr.port(), &[&refs(&bs)]);
    // ns1 (source 127.0.114.1) cannot reach backend 4.
    bs[3].refuse("127.0.114.1");
    let all = instances(&etcd, z.path(), 3, 3, 114);
    converge(&all, 3);
    let every = ips(&refs(&bs));
    let target = bs[3].addr.ip().to_string();
    // ns1's own report says down...
    let seen = wait_until(Duration::from_secs(8), || {
        let c = all[1].cluster();
        c["probes"].as_array().unwrap().iter().any(|p| {
            p["probe"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{target}:"))
                && p["reports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["member"] == "ns1" && r["state"] == "down")
                && p["reports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| r["state"] == "up")
                    .count()
                    == 2
        })
    });
    assert!(
        seen.is_some(),
        "ns1 reports the node down, ns2 and ns3 up: {}",
        all[1].cluster()
    );
    // ...and for 3 s every instance, ns1 included, keeps it in its answers.
    let start = Instant::now();
    let mut polls = 0;
    while start.elapsed() < Duration::from_secs(3) {
        for i in &all {
            assert_eq!(i.answer(0), every, "{} dropped the node", i.name);
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(polls > 10);
}

/// Test 5: killing an instance moves its probes to the others within lease TTL + one
/// interval, and no answer is wrong meanwhile.
#[test]
fn killing_an_instance_moves_its_probes() {
    let etcd = Etcd::start();
    let bs = backends(15);
    let z = zone_dir();
    zones(z.path(), bs[0].addr.port(), &[&refs(&bs)]);
    let mut all = instances(&etcd, z.path(), 3, 2, 115);
    converge(&all, 3);
    let every = ips(&refs(&bs));
    assert!(
        wait_until(Duration::from_secs(5), || all
            .iter()
            .all(|i| i.answer(0) == every))
        .is_some()
    );
    // The share has settled: every backend checked by exactly two sources.
    let settled = wait_until(Duration::from_secs(8), || {
        let since = Instant::now() - Duration::from_millis(1100);
        bs.iter().all(|b| b.hits_since(since).len() == 2)
    });
    assert!(
        settled.is_some(),
        "probe share did not settle on 2 observers"
    );
    let victim = all.pop().unwrap();
    let victim_src: std::net::IpAddr = victim.source.parse().unwrap();
    let killed = Instant::now();
    victim.kill();
    // Every backend gets checks from two live sources again, and none from the victim.
    let mut wrong = 0;
    let moved = wait_until(Duration::from_secs(8), || {
        for i in &all {
            if i.answer(0) != every {
                wrong += 1;
            }
        }
        let since = Instant::now() - Duration::from_millis(1100);
        if since < killed {
            return false;
        }
        bs.iter().all(|b| {
            let h = b.hits_since(since);
            !h.contains_key(&victim_src) && h.len() == 2
        })
    });
    let moved = moved.map(|_| killed.elapsed());
    // When did a new observer take over? The first check after the kill from a source
    // that had not checked that backend in the second before it.
    let mut takeover = Duration::ZERO;
    for b in &bs {
        let hits = b.hits();
        let before: std::collections::HashSet<_> = hits
            .iter()
            .filter(|(t, _)| *t < killed && *t + Duration::from_secs(1) >= killed)
            .map(|(_, ip)| *ip)
            .collect();
        if let Some((t, _)) = hits
            .iter()
            .find(|(t, ip)| *t > killed && !before.contains(ip))
        {
            takeover = takeover.max(*t - killed);
        }
    }
    eprintln!(
        "instance killed: its probes taken over after {takeover:?} (bound: lease TTL 2 s + interval 0.5 s)"
    );
    assert!(
        takeover <= Duration::from_millis(2500 + 300),
        "{takeover:?}"
    );
    eprintln!(
        "instance killed: every backend back to 2 observers after {moved:?} (bound: lease TTL 2 s + interval 0.5 s, measured over a 1.1 s window)"
    );
    assert_eq!(wrong, 0, "wrong answers while the probes moved");
    let moved = moved.expect("probes moved");
    assert!(
        moved <= Duration::from_millis(2500 + 1100 + 500),
        "{moved:?}"
    );
}

/// Test 6: with etcd gone the instances answer from the last view, report degraded,
/// fall back to local probing after the grace period and rejoin when etcd is back.
#[test]
fn etcd_down_degraded_then_local_fallback_then_rejoin() {
    let mut etcd = Etcd::start();
    let mut bs = backends(16);
    let z = zone_dir();
    zones(z.path(), bs[0].addr.port(), &[&refs(&bs)]);
    let all = instances(&etcd, z.path(), 3, 1, 116);
    converge(&all, 3);
    let every = ips(&refs(&bs));
    assert!(
        wait_until(Duration::from_secs(5), || all
            .iter()
            .all(|i| i.answer(0) == every))
        .is_some()
    );
    let lost = Instant::now();
    etcd.kill();
    let degraded = wait_until(Duration::from_secs(6), || {
        all.iter().all(|i| i.cluster()["degraded"] == true)
    });
    eprintln!("etcd killed: all instances degraded after {degraded:?}");
    assert!(degraded.is_some(), "{}", all[0].cluster());
    for i in &all {
        assert_eq!(i.answer(0), every, "{} answers from the last view", i.name);
    }
    let fallback = wait_until(Duration::from_secs(10), || {
        all.iter().all(|i| i.mode() == "fallback")
    });
    eprintln!(
        "fallback (local probing) on all after {:?} (grace 4 s)",
        fallback.map(|_| lost.elapsed())
    );
    assert!(fallback.is_some());
    let (_, metrics) = ops_support::http_get_blocking(all[1].admin, "/metrics").unwrap();
    assert!(metrics.contains("roundel_cluster_degraded 1"), "{metrics}");
    assert!(metrics.contains("roundel_cluster_fallback 1"), "{metrics}");
    let (_, page) = ops_support::http_get_blocking(all[1].admin, "/api/v1/status").unwrap();
    assert!(page.contains("\"mode\":\"fallback\""), "{page}");
    // Local probing: every backend now sees every instance.
    // (Waited for with a bound: a fixed pause would race the first local checks.)
    let mut since = Instant::now();
    wait_until(Duration::from_secs(5), || {
        since = Instant::now() - Duration::from_millis(1000);
        bs.iter().all(|b| b.hits_since(since).len() == 3)
    });
    for b in &bs {
        assert_eq!(
            b.hits_since(since).len(),
            3,
            "{}: {:?}",
            b.addr,
            b.hits_since(since)
        );
    }
    // ...and a failure is still seen everywhere.
    let dead = bs[0].addr.ip().to_string();
    bs[0].stop();
    let gone = wait_until(Duration::from_secs(3), || {
        all.iter().all(|i| !i.answer(0).contains(&dead))
    });
    eprintln!("in fallback, a killed backend left every instance after {gone:?}");
    assert!(gone.is_some());
    bs[0].restart();
    let back = Instant::now();
    etcd.restart();
    let rejoined = wait_until(Duration::from_secs(15), || {
        all.iter().all(|i| i.mode() == "joined")
    });
    eprintln!("etcd back: all rejoined after {rejoined:?}");
    assert!(rejoined.is_some(), "{}", all[0].cluster());
    assert!(back.elapsed() < Duration::from_secs(20));
    assert!(
        wait_until(Duration::from_secs(5), || all
            .iter()
            .all(|i| i.answer(0) == every))
        .is_some()
    );
    let (_, metrics) = ops_support::http_get_blocking(all[0].admin, "/metrics").unwrap();
    assert!(metrics.contains("roundel_cluster_degraded 0"), "{metrics}");
    // The cluster families pass `promtool check metrics` like the rest.
    let body = metrics
        .split_once("\r\n\r\n")
        .map_or(metrics.as_str(), |x| x.1);
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool: {text}");
    assert!(
        !text.contains("roundel_cluster"),
        "promtool on the cluster families: {text}"
    );
}

/// Test 7: after convergence all instances give the same address set for every pool,
/// polled together.
#[test]
fn all_instances_agree_on_every_pool() {
    let etcd = Etcd::start();
    let mut bs = backends(17);
    let z = zone_dir();
    {
        let r = refs(&bs);
        zones(z.path(), bs[0].addr.port(), &[&r, &r[..2], &r[2..]]);
    }
    bs[3].stop();
    let all = instances(&etcd, z.path(), 3, 2, 117);
    converge(&all, 3);
    let want = [
        ips(&[&bs[0], &bs[1], &bs[2]]),
        ips(&[&bs[0], &bs[1]]),
        ips(&[&bs[2]]),
    ];
    assert!(
        wait_until(Duration::from_secs(5), || all
            .iter()
            .all(|i| (0..3).all(|p| i.answer(p) == want[p])))
        .is_some()
    );
    for round in 0..20 {
        let sets: Vec<Vec<Vec<String>>> = std::thread::scope(|s| {
            let hs: Vec<_> = all
                .iter()
                .map(|i| s.spawn(move || (0..3).map(|p| i.answer(p)).collect::<Vec<_>>()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for s in &sets {
            assert_eq!(s, &sets[0], "round {round}: instances disagree: {sets:?}");
            assert_eq!(s.as_slice(), &want, "round {round}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every member sees the same members and no drift.
    for i in &all {
        let c = i.cluster();
        assert_eq!(c["drift"], false, "{c}");
        assert_eq!(c["members"].as_array().unwrap().len(), 3);
    }
    // A fourth instance with different zones is flagged as drift everywhere, in the
    // API and in `roundel ctl status`.
    let other = zone_dir();
    {
        let r = refs(&bs);
        zones(other.path(), bs[0].addr.port(), &[&r]);
    }
    let odd = Instance::start(other.path(), cluster_config(&etcd, "ns4", "127.0.117.4", 2));
    let flagged = wait_until(Duration::from_secs(5), || {
        all.iter().all(|i| {
            let c = i.cluster();
            c["drift"] == true
                && c["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["name"] == "ns4" && m["drift"] == true)
        })
    });
    assert!(flagged.is_some(), "{}", all[0].cluster());
    let (_, status) = ops_support::http_get_blocking(all[0].admin, "/api/v1/status").unwrap();
    let text = roundel::ctl::status_table(&serde_json::from_str(&status).unwrap());
    assert!(text.contains("cluster: ns1 is joined"), "{text}");
    assert!(text.contains("DRIFT"), "{text}");
    drop(odd);
}
