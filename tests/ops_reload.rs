//! Reloads through a running server: queries at a steady rate through many reloads (none
//! lost, none wrong), health state kept across reloads (no blind window), new nodes
//! checked before they are served, removed nodes no longer probed, and the automatic SOA
//! serial moving with the content.

mod ops_support;
mod support_backends;

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;
use ops_support::*;
use reqwest::Method;
use serde_json::Value;
use support_backends::{Backend, Mode, dead_addr};

const TOKEN: &str = "reload-test-token";

fn pool_block(nodes: &[(String, u16)], name: &str) -> String {
    let list: Vec<String> = nodes
        .iter()
        .map(|(ip, port)| format!("{{ addr = \"{ip}\", check_port = {port} }}"))
        .collect();
    format!(
        "[pools.{name}]\ncheck = {{ http = {{ path = \"/\" }}, interval = \"200ms\", timeout = \"100ms\", fall = 1, rise = 1 }}\nnodes = [{}]\n",
        list.join(", ")
    )
}

fn node_of(b: &Backend) -> (String, u16) {
    (b.addr.ip().to_string(), b.port())
}

async fn reload(c: &reqwest::Client, s: &Server) -> (u16, Value) {
    call(c, Method::POST, &s.url("/api/v1/reload"), Some(TOKEN), None).await
}

/// What one answer says, reduced to what the test checks.
fn verdict(m: &Message, name_is_v: bool, pool: &BTreeSet<String>) -> Result<(), String> {
    if m.metadata.response_code != ResponseCode::NoError {
        return Err(format!("rcode {}", m.metadata.response_code));
    }
    if !m.metadata.authoritative {
        return Err("AA clear".into());
    }
    let got: BTreeSet<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    let ok = if name_is_v {
        got.len() == 1
            && m.answers.len() == 1
            && (got.contains("192.0.2.1") || got.contains("192.0.2.2"))
    } else {
        &got == pool
    };
    if ok {
        Ok(())
    } else {
        Err(format!("answer {got:?}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_loses_and_garbles_nothing() {
    const RATE: u64 = 3000; // queries per second
    const TIMEOUT: Duration = Duration::from_secs(1);
    const VALID_RELOADS: usize = 20;
    const MAX_QUERIES: usize = 200_000;

    let b1 = Backend::http("127.0.0.71", Mode::ok()).await;
    let b2 = Backend::http("127.0.0.72", Mode::ok()).await;
    let pool = pool_block(&[node_of(&b1), node_of(&b2)], "web");
    let version = |v: u8| {
        zone(
            "load.test.",
            "\"auto\"",
            &format!("[names.v]\nA = \"192.0.2.{v}\"\n{pool}"),
        )
    };
    let invalid = |i: usize| {
        // Alternate between a syntax error and a semantic one.
        if i.is_multiple_of(2) {
            version(1).replace("[names.v]", "[names.v")
        } else {
            version(1).replace("192.0.2.1\"", "192.0.2.1\"\nMX = \"no-preference\"")
        }
    };
    let zones = TempDir::new("reload-load");
    let file = zones.join("load.test.toml");
    write_atomic(&file, &version(1));
    let s = Server::start(
        zones.path(),
        Opts {
            token: Some(TOKEN.into()),
            ..Opts::default()
        },
    );
    let c = client();
    let pool_set: BTreeSet<String> = ["127.0.0.71", "127.0.0.72"]
        .into_iter()
        .map(String::from)
        .collect();

    // The load: a sender thread paced at RATE, a receiver thread matching answers by id.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // Room for seconds of answers in the client's own socket (as much as
    // net.core.rmem_max allows): on a busy machine the receiver thread can be off the CPU
    // for a while, and answers the client's kernel dropped meanwhile would count as lost
    // by the server.
    socket2::SockRef::from(&sock)
        .set_recv_buffer_size(8 << 20)
        .unwrap();
    let rx_sock = sock.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sent_at: Arc<Vec<AtomicU64>> =
        Arc::new((0..MAX_QUERIES).map(|_| AtomicU64::new(0)).collect());
    let epoch = Instant::now();
    let dns = s.dns;
    let sender = {
        let (stop, sent, sent_at) = (stop.clone(), sent.clone(), sent_at.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && (n as usize) < MAX_QUERIES {
                // Catch up to the schedule, then sleep a little.
                let due =
                    (start.elapsed().as_micros() as u64 * RATE / 1_000_000).min(MAX_QUERIES as u64);
                while n < due {
                    let name = if n.is_multiple_of(2) {
                        "v.load.test."
                    } else {
                        "web.load.test."
                    };
                    sent_at[n as usize]
                        .store(epoch.elapsed().as_micros() as u64 + 1, Ordering::Relaxed);
                    // Counted before it leaves, so the receiver always knows it.
                    sent.store(n + 1, Ordering::Release);
                    let _ = sock.send_to(&query_bytes(n as u16, name, A), dns);
                    n += 1;
                }
                std::thread::sleep(Duration::from_micros(300));
            }
            start.elapsed()
        })
    };
    let receiver = {
        let (stop, sent, sent_at) = (stop.clone(), sent.clone(), sent_at.clone());
        let pool_set = pool_set.clone();
        std::thread::spawn(move || {
            let mut answered = vec![false; MAX_QUERIES];
            let (mut ok, mut late, mut wrong, mut dup) = (0u64, 0u64, 0u64, 0u64);
            let mut wrong_examples = Vec::new();
            let mut buf = [0u8; 2048];
            let mut quiet_since: Option<Instant> = None;
            loop {
                match rx_sock.recv_from(&mut buf) {
                    Ok((len, _)) => {
                        quiet_since = None;
                        let now = epoch.elapsed().as_micros() as u64 + 1;
                        let n = sent.load(Ordering::Acquire);
                        let id = u16::from_be_bytes([buf[0], buf[1]]) as u64;
                        let seq = (n - 1) - ((n - 1).wrapping_sub(id) & 0xffff);
                        let seq = seq as usize;
                        if answered[seq] {
                            dup += 1;
                            continue;
                        }
                        answered[seq] = true;
                        let at = sent_at[seq].load(Ordering::Relaxed);
                        if now.saturating_sub(at) > TIMEOUT.as_micros() as u64 {
                            late += 1;
                            continue;
                        }
                        let result = Message::from_vec(&buf[..len])
                            .map_err(|e| e.to_string())
                            .and_then(|m| verdict(&m, seq.is_multiple_of(2), &pool_set));
                        match result {
                            Ok(()) => ok += 1,
                            Err(e) => {
                                wrong += 1;
                                if wrong_examples.len() < 5 {
                                    wrong_examples.push(format!("query {seq}: {e}"));
                                }
                            }
                        }
                    }
                    Err(_) => {
                        // Hard bound, whatever happens to the rest of the test.
                        if epoch.elapsed() > Duration::from_secs(120) {
                            break;
                        }
                        if stop.load(Ordering::Relaxed) {
                            let q = *quiet_since.get_or_insert_with(Instant::now);
                            if q.elapsed() > TIMEOUT {
                                break;
                            }
                        }
                    }
                }
            }
            (ok, late, wrong, dup, wrong_examples)
        })
    };

    // The reloads: valid versions alternate; an invalid edit before every other one.
    let started = Instant::now();
    // Let the load run a moment before the first reload.
    eventually(Duration::from_secs(5), "queries flowing", || {
        let n = sent.load(Ordering::Relaxed);
        async move { n > RATE / 10 }
    })
    .await;
    let (mut accepted, mut rejected) = (0, 0);
    for i in 0..VALID_RELOADS {
        if i % 2 == 1 {
            write_atomic(&file, &invalid(i));
            let (code, body) = reload(&c, &s).await;
            assert_eq!(code, 422, "invalid edit {i} accepted: {body}");
            assert!(!body["last"]["errors"].as_array().unwrap().is_empty());
            rejected += 1;
        }
        let v = if i.is_multiple_of(2) { 2 } else { 1 };
        write_atomic(&file, &version(v));
        let (code, body) = reload(&c, &s).await;
        assert_eq!(code, 200, "valid version {v} rejected: {body}");
        accepted += 1;
        // A moment of traffic on each version.
        let mark = sent.load(Ordering::Relaxed);
        eventually(Duration::from_secs(5), "traffic between reloads", || {
            let n = sent.load(Ordering::Relaxed);
            async move { n >= mark + RATE / 5 }
        })
        .await;
    }
    let reload_phase = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let sending = sender.join().unwrap();
    let (ok, late, wrong, dup, examples) = receiver.join().unwrap();
    let total = sent.load(Ordering::Relaxed);
    let lost = total - ok - wrong;
    let rate = total as f64 / sending.as_secs_f64();
    println!(
        "reload under load: {total} queries sent at ~{rate:.0} q/s over {:.1} s of reloads; \
         {accepted} valid reloads, {rejected} invalid edits rejected; answered {ok} right, \
         {wrong} wrong, {lost} lost ({late} of them late > {TIMEOUT:?}), {dup} duplicates",
        reload_phase.as_secs_f64()
    );
    let status = get(&c, &s.url("/api/v1/reload")).await;
    assert_eq!(status["total"], 1 + accepted + rejected);
    assert_eq!(status["failed"], rejected);
    assert_eq!(wrong, 0, "wrong answers: {examples:?}");
    assert_eq!(lost, 0, "lost or late answers");
    assert_eq!(dup, 0);
    assert!(total >= RATE, "too little load to mean anything: {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_survives_reloads_new_nodes_are_checked_first_removed_ones_stop() {
    let b1 = Backend::http("127.0.0.73", Mode::ok()).await;
    let mut b2 = Backend::http("127.0.0.74", Mode::ok()).await;
    let b4 = Backend::http("127.0.0.76", Mode::ok()).await;
    let dead = dead_addr("127.0.0.75").await;
    let zones = TempDir::new("reload-health");
    let file = zones.join("h.test.toml");
    let with = |nodes: &[(String, u16)], x: &str| {
        zone(
            "h.test.",
            "\"auto\"",
            &format!("[names.x]\nTXT = \"{x}\"\n{}", pool_block(nodes, "web")),
        )
    };
    let base = [node_of(&b1), node_of(&b2)];
    write_atomic(&file, &with(&base, "one"));
    let s = Server::start(
        zones.path(),
        Opts {
            token: Some(TOKEN.into()),
            ..Opts::default()
        },
    );
    let c = client();
    let web = |s: &Server| addrs(&query(s.dns, "web.h.test.", A));
    b2.stop().await;
    eventually(Duration::from_secs(5), "b2 down", || async {
        let st = get(&c, &s.url("/api/v1/status")).await;
        node(&st, "web.h.test.", "127.0.0.74")["state"] == "down"
    })
    .await;
    let before = get(&c, &s.url("/api/v1/status")).await;

    // Query continuously while reloading: every answer must be b1 alone.
    let stop = Arc::new(AtomicBool::new(false));
    let dns = s.dns;
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                seen.push(addrs(&query(dns, "web.h.test.", A)));
                n += 1;
            }
            seen
        })
    };
    for i in 0..5 {
        write_atomic(&file, &with(&base, &format!("edit {i}")));
        let (code, body) = reload(&c, &s).await;
        assert_eq!(code, 200, "{body}");
    }
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    assert!(seen.len() > 10);
    assert!(
        seen.iter().all(|a| a == &["127.0.0.73"]),
        "an answer during the reloads named something else than the up node: {:?}",
        seen.iter().find(|a| *a != &["127.0.0.73"])
    );
    let after = get(&c, &s.url("/api/v1/status")).await;
    for label in ["127.0.0.73", "127.0.0.74"] {
        let (b, a) = (
            node(&before, "web.h.test.", label),
            node(&after, "web.h.test.", label),
        );
        assert_eq!(a["state"], b["state"], "{label}");
        assert_eq!(a["since"], b["since"], "{label}: state kept, not re-learnt");
        assert_eq!(a["transitions"], b["transitions"], "{label}");
    }
    assert_eq!(after["generation"], 6);

    // New nodes: a dead one and a live one. When the reload returns both have been
    // checked: the first answer already names the live one and never the dead one.
    let grown = [
        node_of(&b1),
        node_of(&b2),
        (dead.ip().to_string(), dead.port()),
        node_of(&b4),
    ];
    write_atomic(&file, &with(&grown, "grown"));
    assert_eq!(reload(&c, &s).await.0, 200);
    assert_eq!(web(&s), ["127.0.0.73", "127.0.0.76"]);
    let st = get(&c, &s.url("/api/v1/status")).await;
    assert_eq!(node(&st, "web.h.test.", "127.0.0.75")["state"], "down");
    assert_eq!(
        node(&st, "web.h.test.", "127.0.0.75")["last_failure"],
        "connection refused"
    );
    for _ in 0..20 {
        assert_eq!(web(&s), ["127.0.0.73", "127.0.0.76"]);
    }

    // A removed node is no longer probed: after several more checks of b1, b4 got none
    // (one in flight at the moment of the reload at most).
    write_atomic(&file, &with(&base, "shrunk"));
    assert_eq!(reload(&c, &s).await.0, 200);
    let (h4, h1) = (b4.hits(), b1.hits());
    support_backends::wait_for(Duration::from_secs(5), || b1.hits() >= h1 + 4)
        .await
        .expect("b1 keeps being checked");
    assert!(
        b4.hits() <= h4 + 1,
        "b4 still probed: {} -> {}",
        h4,
        b4.hits()
    );
    assert_eq!(web(&s), ["127.0.0.73"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_serial_increases_with_every_content_change() {
    let zones = TempDir::new("reload-serial");
    let file = zones.join("s.test.toml");
    let text = |v: &str| zone("s.test.", "\"auto\"", &format!("[names.v]\nTXT = \"{v}\""));
    write_atomic(&file, &text("one"));
    let s = Server::start(
        zones.path(),
        Opts {
            token: Some(TOKEN.into()),
            ..Opts::default()
        },
    );
    let c = client();
    let soa = |s: &Server| serial(&query(s.dns, "s.test.", SOA));
    let s1 = soa(&s);
    // No change: same serial.
    assert_eq!(reload(&c, &s).await.0, 200);
    assert_eq!(soa(&s), s1);
    // Each change: a higher serial (RFC 1982 order; no wrap here).
    let mut last = s1;
    for v in ["two", "three", "four"] {
        write_atomic(&file, &text(v));
        assert_eq!(reload(&c, &s).await.0, 200);
        let now = soa(&s);
        assert!(now > last, "serial {now} after {last}");
        last = now;
    }
    // A rejected edit changes nothing.
    write_atomic(&file, &text("five").replace("[names.v]", "[names.v]]"));
    assert_eq!(reload(&c, &s).await.0, 422);
    assert_eq!(soa(&s), last);
    // The API and the metrics agree with DNS.
    let z = get(&c, &s.url("/api/v1/zones")).await;
    assert_eq!(z[0]["serial"], last);
}
