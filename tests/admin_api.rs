//! The admin API against a running server (in-process, real sockets) with real HTTP
//! backends on 127.0.0.x: reads, drain / maint / ready / weight with the token, refusals
//! without it, overrides kept across reloads, node removal and restarts, reload errors
//! with their location, explain, and the metrics.

mod ops_support;
mod support_backends;

use std::time::{Duration, SystemTime};

use ops_support::*;
use reqwest::Method;
use serde_json::{Value, json};
use support_backends::{Backend, Mode};

const TOKEN: &str = "s3cret-admin-token";
const POOL: &str = "web.ops.test.";

fn pool_zone(backends: &[&Backend], extra_nodes: &str, extra: &str) -> String {
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
        "ops.test.",
        "\"auto\"",
        &format!(
            r#"[names.www]
CNAME = "web"
{extra}
[pools.web]
check = {{ http = {{ path = "/health" }}, interval = "200ms", timeout = "100ms", fall = 1, rise = 1 }}
ttl = 30
degraded_ttl = 10
nodes = [{}{extra_nodes}]
"#,
            nodes.join(", ")
        ),
    )
}

fn parse_time(s: &Value) -> SystemTime {
    // "2024-05-01T12:34:56.789Z" -> SystemTime, enough for comparisons in tests.
    let s = s.as_str().unwrap();
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, ms) = time.split_once('.').unwrap();
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let (y, m, day) = (d[0], d[1], d[2]);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
    SystemTime::UNIX_EPOCH
        + Duration::from_secs(secs as u64)
        + Duration::from_millis(ms.parse().unwrap())
}

async fn status(c: &reqwest::Client, s: &Server) -> Value {
    get(c, &s.url("/api/v1/status")).await
}

async fn post(c: &reqwest::Client, s: &Server, path: &str, token: Option<&str>) -> (u16, Value) {
    call(c, Method::POST, &s.url(path), token, None).await
}

fn web_a(s: &Server) -> Vec<String> {
    addrs(&query(s.dns, "web.ops.test.", A))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_drain_maint_ready_weight_and_persistence() {
    let b1 = Backend::http("127.0.0.51", Mode::ok()).await;
    let b2 = Backend::http("127.0.0.52", Mode::ok()).await;
    let mut b3 = Backend::http("127.0.0.53", Mode::ok()).await;
    let zones = TempDir::new("admin-zones");
    let state = TempDir::new("admin-state");
    let file = zones.join("ops.test.toml");
    write_atomic(&file, &pool_zone(&[&b1, &b2, &b3], "", ""));
    let opts = Opts {
        token: Some(TOKEN.into()),
        state_dir: Some(state.0.clone()),
        watch: false,
        ..Opts::default()
    };
    let s = Server::start(zones.path(), opts.clone());
    let c = client();

    // Zones and pools.
    let z = get(&c, &s.url("/api/v1/zones")).await;
    assert_eq!(z[0]["origin"], "ops.test.");
    assert_eq!(z[0]["names"], 4, "apex, ns1, www, web: {z}");
    assert_eq!(z[0]["pools"], json!([POOL]));
    assert!(z[0]["serial"].as_u64().unwrap() > 0);
    assert!(z[0]["file"].as_str().unwrap().ends_with("ops.test.toml"));
    let p = get(&c, &s.url("/api/v1/pools/web.ops.test")).await;
    assert_eq!(p["policy"], "round-robin");
    assert_eq!(p["serving"], 3);
    let n1 = &p["nodes"][0];
    assert_eq!(n1["state"], "up");
    assert_eq!(n1["check"], format!("http {}", b1.addr));
    assert!(n1["rtt_ms"].as_f64().is_some() && n1["last_check"].is_string());
    assert_eq!(n1["transitions"][0]["from"], "unknown");
    assert_eq!(n1["transitions"][0]["to"], "up");
    assert!(n1["since"].is_string());
    assert_eq!(web_a(&s), ["127.0.0.51", "127.0.0.52", "127.0.0.53"]);

    // A backend stops: the API shows it down with the reason, and answers leave it out.
    b3.stop().await;
    eventually(Duration::from_secs(5), "web3 down in the API", || async {
        node(&status(&c, &s).await, POOL, "web3")["state"] == "down"
    })
    .await;
    let st = status(&c, &s).await;
    let n3 = node(&st, POOL, "web3");
    assert_eq!(n3["last_failure"], "connection refused");
    assert_eq!(n3["transitions"][0]["from"], "up");
    assert_eq!(n3["transitions"][0]["to"], "down");
    assert_eq!(n3["transitions"][0]["reason"], "connection refused");
    assert_eq!(n3["since"], n3["transitions"][0]["at"]);
    assert_eq!(web_a(&s), ["127.0.0.51", "127.0.0.52"]);

    // Drain needs the token.
    let path = "/api/v1/pools/web.ops.test/nodes/web1/drain";
    let (st_code, body) = post(&c, &s, path, None).await;
    assert_eq!(st_code, 401, "{body}");
    let (st_code, _) = post(&c, &s, path, Some("wrong")).await;
    assert_eq!(st_code, 401);
    assert_eq!(node(&status(&c, &s).await, POOL, "web1")["state"], "up");

    // Drain: out of new answers at once; the API says until when cached answers live.
    let before = SystemTime::now();
    let (st_code, body) = post(&c, &s, path, Some(TOKEN)).await;
    assert_eq!(st_code, 200, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("safe to stop after"),
        "{body}"
    );
    let n = &body["node"];
    assert_eq!(n["state"], "drain");
    assert_eq!(n["admin"], "drain");
    assert_eq!(n["safe_to_stop"], false);
    // Last served just now with the degraded TTL (10 s, web3 is down): cached for ~10 s
    // more; and never less than the 30 s TTL after start (a previous process may have
    // served it).
    let last_served = parse_time(&n["last_served"]);
    let until = parse_time(&n["cached_until"]);
    assert!(last_served <= SystemTime::now());
    assert!(until >= last_served + Duration::from_secs(10), "{n}");
    assert!(until >= before, "{n}");
    assert!(n["override_since"].is_string());
    for _ in 0..5 {
        assert_eq!(
            web_a(&s),
            ["127.0.0.52"],
            "a drained node is not handed out"
        );
    }

    // Weight override and clear.
    let wpath = s.url("/api/v1/pools/web.ops.test/nodes/127.0.0.52/weight");
    let (code, body) = call(
        &c,
        Method::PUT,
        &wpath,
        Some(TOKEN),
        Some(json!({"weight": 7})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["node"]["effective_weight"], 7);
    assert_eq!(body["node"]["weight_override"], 7);
    let (code, _) = call(
        &c,
        Method::PUT,
        &wpath,
        Some(TOKEN),
        Some(json!({"weight": "x"})),
    )
    .await;
    assert_eq!(code, 400);
    let (code, body) = call(&c, Method::DELETE, &wpath, Some(TOKEN), None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["node"]["weight_override"], Value::Null);
    assert_eq!(body["node"]["effective_weight"], 1);

    // Maint on the last serving node: every node is out (drain, maint, down), and the
    // pool fails open to what is neither drained nor in maintenance: web3.
    let (code, _) = post(
        &c,
        &s,
        "/api/v1/pools/web.ops.test/nodes/web2/maint",
        Some(TOKEN),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(web_a(&s), ["127.0.0.53"]);
    let (code, body) = post(
        &c,
        &s,
        "/api/v1/pools/web.ops.test/nodes/web2/ready",
        Some(TOKEN),
    )
    .await;
    assert_eq!(code, 200);
    assert!(body["message"].as_str().unwrap().contains("ready"));
    assert_eq!(web_a(&s), ["127.0.0.52"]);

    // Unknown pool / node / action.
    let (code, body) = post(
        &c,
        &s,
        "/api/v1/pools/nope.ops.test/nodes/web1/drain",
        Some(TOKEN),
    )
    .await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = post(
        &c,
        &s,
        "/api/v1/pools/web.ops.test/nodes/web9/drain",
        Some(TOKEN),
    )
    .await;
    assert_eq!(code, 404);
    assert!(body["error"].as_str().unwrap().contains("web1, web2, web3"));
    let (code, _) = post(
        &c,
        &s,
        "/api/v1/pools/web.ops.test/nodes/web1/frobnicate",
        Some(TOKEN),
    )
    .await;
    assert_eq!(code, 404);

    // The state file holds the drain.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("admin-state.json")).unwrap())
            .unwrap();
    assert_eq!(saved["nodes"].as_array().unwrap().len(), 1, "{saved}");
    assert_eq!(saved["nodes"][0]["addr"], "127.0.0.51");
    assert_eq!(saved["nodes"][0]["state"], "drain");

    // Across a reload: still drained.
    let (code, body) = post(&c, &s, "/api/v1/reload", Some(TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(node(&status(&c, &s).await, POOL, "web1")["state"], "drain");
    assert_eq!(web_a(&s), ["127.0.0.52"]);

    // The node leaves the zone and comes back: the state file re-applies the drain.
    write_atomic(&file, &pool_zone(&[&b2], "", ""));
    assert_eq!(post(&c, &s, "/api/v1/reload", Some(TOKEN)).await.0, 200);
    write_atomic(&file, &pool_zone(&[&b1, &b2], "", ""));
    assert_eq!(post(&c, &s, "/api/v1/reload", Some(TOKEN)).await.0, 200);
    assert_eq!(node(&status(&c, &s).await, POOL, "web1")["state"], "drain");
    assert_eq!(web_a(&s), ["127.0.0.52"]);

    // Across a restart: drained from the very first answer.
    drop(s);
    let s = Server::start(zones.path(), opts);
    assert_eq!(web_a(&s), ["127.0.0.52"]);
    let st = status(&c, &s).await;
    assert_eq!(node(&st, POOL, "web1")["state"], "drain");
    assert!(
        st["state_file"]
            .as_str()
            .unwrap()
            .ends_with("admin-state.json")
    );
    // Ready again: back in answers, and the override is gone from the file.
    let (code, _) = post(&c, &s, path.replace("drain", "ready").as_str(), Some(TOKEN)).await;
    assert_eq!(code, 200);
    assert_eq!(web_a(&s), ["127.0.0.51", "127.0.0.52"]);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("admin-state.json")).unwrap())
            .unwrap();
    assert_eq!(saved["nodes"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_state_changes_are_refused() {
    let b1 = Backend::http("127.0.0.54", Mode::ok()).await;
    let zones = TempDir::new("admin-notoken");
    write_atomic(&zones.join("ops.test.toml"), &pool_zone(&[&b1], "", ""));
    let s = Server::start(zones.path(), Opts::default());
    let c = client();
    let st = status(&c, &s).await;
    assert_eq!(st["writable"], false);
    assert_eq!(st["state_file"], Value::Null);
    for (method, path) in [
        (Method::POST, "/api/v1/pools/web.ops.test/nodes/web1/drain"),
        (Method::POST, "/api/v1/pools/web.ops.test/nodes/web1/maint"),
        (
            Method::DELETE,
            "/api/v1/pools/web.ops.test/nodes/web1/weight",
        ),
        (Method::POST, "/api/v1/reload"),
    ] {
        let (code, body) = call(&c, method.clone(), &s.url(path), Some("anything"), None).await;
        assert_eq!(code, 403, "{method} {path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("no admin token is configured"),
            "{body}"
        );
    }
    let (code, _) = call(
        &c,
        Method::PUT,
        &s.url("/api/v1/query-log"),
        None,
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(node(&status(&c, &s).await, POOL, "web1")["state"], "up");
    assert_eq!(web_a(&s), ["127.0.0.54"]);
    let (code, _) = call(&c, Method::GET, &s.url("/api/v1/nothing"), None, None).await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_reload_is_reported_with_file_line_and_reason() {
    let b1 = Backend::http("127.0.0.55", Mode::ok()).await;
    let zones = TempDir::new("admin-reload");
    let file = zones.join("ops.test.toml");
    let good = pool_zone(&[&b1], "", "[names.v]\nA = \"192.0.2.1\"");
    write_atomic(&file, &good);
    let s = Server::start(
        zones.path(),
        Opts {
            token: Some(TOKEN.into()),
            ..Opts::default()
        },
    );
    let c = client();
    let bad = good.replace("A = \"192.0.2.1\"", "A = \"192.0.2.300\"");
    let bad_line = bad.lines().position(|l| l.contains("192.0.2.300")).unwrap() + 1;
    write_atomic(&file, &bad);
    let (code, body) = post(&c, &s, "/api/v1/reload", Some(TOKEN)).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["total"], 2);
    assert_eq!(body["failed"], 1);
    let last = &body["last"];
    assert_eq!(last["ok"], false);
    assert_eq!(last["trigger"], "api");
    assert_eq!(last["generation"], 1, "still serving generation 1");
    let e = &last["errors"][0];
    assert!(
        e["file"].as_str().unwrap().ends_with("ops.test.toml"),
        "{e}"
    );
    assert_eq!(e["line"], bad_line, "{e}");
    assert!(e["column"].as_u64().unwrap() > 0);
    assert!(!e["reason"].as_str().unwrap().is_empty());
    assert!(
        e["text"]
            .as_str()
            .unwrap()
            .contains(&format!(":{bad_line}:"))
    );
    // Old data still served; the status document and GET /reload carry the failure.
    assert_eq!(addrs(&query(s.dns, "v.ops.test.", A)), ["192.0.2.1"]);
    let st = status(&c, &s).await;
    assert_eq!(st["reload"]["last"]["ok"], false);
    assert_eq!(get(&c, &s.url("/api/v1/reload")).await["failed"], 1);
    let m = metrics(&c, &s).await;
    assert_eq!(metric(&m, "roundel_reloads_total", &[]), Some(2.0));
    assert_eq!(metric(&m, "roundel_reloads_failed_total", &[]), Some(1.0));
    assert_eq!(metric(&m, "roundel_reload_last_ok", &[]), Some(0.0));
    let first_success = metric(&m, "roundel_reload_last_success_timestamp_seconds", &[]).unwrap();
    assert!(first_success > 1e9);

    // Fixed: accepted, served, the timestamp moves.
    tokio::time::sleep(Duration::from_millis(20)).await;
    write_atomic(&file, &good.replace("192.0.2.1\"", "192.0.2.2\""));
    let (code, body) = post(&c, &s, "/api/v1/reload", Some(TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["last"]["ok"], true);
    assert_eq!(body["last"]["errors"], json!([]));
    assert_eq!(addrs(&query(s.dns, "v.ops.test.", A)), ["192.0.2.2"]);
    let m = metrics(&c, &s).await;
    assert_eq!(metric(&m, "roundel_reloads_total", &[]), Some(3.0));
    assert_eq!(metric(&m, "roundel_reload_last_ok", &[]), Some(1.0));
    assert!(
        metric(&m, "roundel_reload_last_success_timestamp_seconds", &[]).unwrap() > first_success
    );
    assert_eq!(metric(&m, "roundel_snapshot_generation", &[]), Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_gives_the_answer_and_every_verdict() {
    let b1 = Backend::http("127.0.0.56", Mode::ok()).await;
    let b2 = Backend::http("127.0.0.57", Mode::ok()).await;
    let mut b3 = Backend::http("127.0.0.58", Mode::ok()).await;
    let b4 = Backend::http("127.0.0.59", Mode::ok()).await;
    let zones = TempDir::new("admin-explain");
    // web1, web2 (drained), web3 (stopped) in tier 1; web4 in tier 2; one IPv6 node.
    let extra = format!(
        ", {{ addr = \"{}\", label = \"web4\", tier = 2, check_port = {} }}, {{ addr = \"::1\", label = \"v6\", check_addr = \"{}\", check_port = {} }}",
        b4.addr.ip(),
        b4.port(),
        b1.addr.ip(),
        b1.port()
    );
    write_atomic(
        &zones.join("ops.test.toml"),
        &pool_zone(&[&b1, &b2, &b3], &extra, ""),
    );
    let s = Server::start(
        zones.path(),
        Opts {
            token: Some(TOKEN.into()),
            ..Opts::default()
        },
    );
    let c = client();
    b3.stop().await;
    eventually(Duration::from_secs(5), "web3 down", || async {
        node(&status(&c, &s).await, POOL, "web3")["health"] == "down"
    })
    .await;
    assert_eq!(
        post(
            &c,
            &s,
            "/api/v1/pools/web.ops.test/nodes/web2/drain",
            Some(TOKEN)
        )
        .await
        .0,
        200
    );

    // Through the CNAME: the answer has both records, and the pool's decision.
    let v = get(
        &c,
        &s.url("/api/v1/explain?name=www.ops.test&type=A&client=198.51.100.7"),
    )
    .await;
    assert_eq!(v["name"], "www.ops.test.");
    assert_eq!(v["client"], "198.51.100.7");
    let r = &v["response"];
    assert_eq!(r["rcode"], "NOERROR");
    assert_eq!(r["aa"], true);
    assert_eq!(r["zone"], "ops.test.");
    assert_eq!(r["answer"][0]["type"], "CNAME");
    assert_eq!(r["answer"][0]["data"], "web.ops.test.");
    assert_eq!(r["answer"][1]["name"], "web.ops.test.");
    assert_eq!(r["answer"][1]["data"], "127.0.0.56");
    assert_eq!(r["answer"][1]["ttl"], 10, "degraded TTL: web3 is down");
    assert_eq!(r["answer"].as_array().unwrap().len(), 2);
    let p = &v["pools"][0];
    assert_eq!(p["pool"], POOL);
    assert_eq!(p["family"], "A");
    assert_eq!(p["outcome"], "answer");
    assert_eq!(p["tier"], 1);
    assert_eq!(p["degraded"], true);
    let verdicts: Vec<(&str, &str)> = p["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["label"].as_str().unwrap(), n["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("web1", "selected"),
            ("web2", "drained"),
            ("web3", "down"),
            ("web4", "other-tier"),
            ("v6", "other-family"),
        ]
    );
    assert!(p["nodes"][3]["reason"].as_str().unwrap().contains("tier 2"));

    // AAAA with an ECS subnet.
    let v = get(
        &c,
        &s.url("/api/v1/explain?name=web.ops.test&type=AAAA&ecs=2001:db8::/48"),
    )
    .await;
    assert_eq!(v["ecs"], "2001:db8::/48");
    assert_eq!(v["response"]["answer"][0]["data"], "::1");
    assert_eq!(v["pools"][0]["nodes"][4]["verdict"], "selected");

    // A name that does not exist: NXDOMAIN with the SOA, no pool.
    let v = get(&c, &s.url("/api/v1/explain?name=nope.ops.test&type=TXT")).await;
    assert_eq!(v["response"]["rcode"], "NXDOMAIN");
    assert_eq!(v["response"]["authority"][0]["type"], "SOA");
    assert_eq!(v["pools"], json!([]));
    // Outside every zone.
    let v = get(&c, &s.url("/api/v1/explain?name=example.org")).await;
    assert_eq!(v["response"]["rcode"], "REFUSED");
    assert_eq!(v["response"]["aa"], false);

    for bad in [
        "/api/v1/explain",
        "/api/v1/explain?name=web.ops.test&type=BOGUS",
        "/api/v1/explain?name=web.ops.test&client=nope",
        "/api/v1/explain?name=web.ops.test&ecs=10.0.0.0/99",
        "/api/v1/explain?name=web.ops.test&color=blue",
    ] {
        let (code, body) = call(&c, Method::GET, &s.url(bad), None, None).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body["error"].is_string());
    }
}

async fn metrics(c: &reqwest::Client, s: &Server) -> String {
    let r = c
        .get(s.url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    r.text().await.unwrap()
}

/// The value of the sample `name{labels...}` (labels given as k=v pairs, all required).
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        if n != name {
            return None;
        }
        labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.parse().unwrap())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_queries_nodes_checks_reloads_and_process() {
    let b1 = Backend::http("127.0.0.60", Mode::ok()).await;
    let mut b2 = Backend::http("127.0.0.61", Mode::ok()).await;
    let zones = TempDir::new("admin-metrics");
    let big: Vec<String> = (0..8)
        .map(|i| format!("\"{i}{}\"", "x".repeat(99)))
        .collect();
    write_atomic(
        &zones.join("ops.test.toml"),
        &pool_zone(
            &[&b1, &b2],
            "",
            &format!("[names.big]\nTXT = [{}]", big.join(", ")),
        ),
    );
    let s = Server::start(
        zones.path(),
        Opts {
            token: Some(TOKEN.into()),
            ..Opts::default()
        },
    );
    let c = client();
    for _ in 0..5 {
        query(s.dns, "web.ops.test.", A);
    }
    query(s.dns, "nope.ops.test.", A);
    query(s.dns, "example.org.", A);
    // No EDNS: 800 bytes of TXT do not fit 512, so the answer is truncated.
    let m = query(s.dns, "big.ops.test.", 16);
    assert!(m.metadata.truncation);
    // One TCP query.
    {
        use std::io::{Read, Write};
        let mut t = std::net::TcpStream::connect(s.dns).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let q = query_bytes(7, "web.ops.test.", A);
        t.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
        t.write_all(&q).unwrap();
        let mut len = [0u8; 2];
        t.read_exact(&mut len).unwrap();
    }
    b2.stop().await;
    eventually(Duration::from_secs(5), "web2 down", || async {
        node(&status(&c, &s).await, POOL, "web2")["health"] == "down"
    })
    .await;
    let (code, _) = call(
        &c,
        Method::PUT,
        &s.url("/api/v1/query-log"),
        Some(TOKEN),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(code, 200);

    let text = metrics(&c, &s).await;
    assert!(text.trim_end().ends_with("# EOF"));
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(series.starts_with("roundel_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    let z = [("zone", "ops.test."), ("qtype", "A"), ("rcode", "NOERROR")];
    assert_eq!(
        metric(&text, "roundel_dns_queries_total", &z),
        Some(6.0),
        "5 UDP + 1 TCP"
    );
    assert_eq!(
        metric(
            &text,
            "roundel_dns_queries_total",
            &[("zone", "ops.test."), ("rcode", "NXDOMAIN")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "roundel_dns_queries_total",
            &[("zone", "unmatched"), ("rcode", "REFUSED")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "roundel_dns_queries_by_transport_total",
            &[("transport", "tcp")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "roundel_dns_udp_truncated_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "roundel_dns_tcp_connections_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "roundel_dns_answer_duration_seconds_count", &[]),
        Some(9.0)
    );
    assert_eq!(
        metric(
            &text,
            "roundel_dns_answer_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        Some(9.0)
    );
    let web2 = [("pool", POOL), ("node", "web2")];
    assert_eq!(
        metric(
            &text,
            "roundel_node_state",
            &[web2[0], web2[1], ("state", "down")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "roundel_node_state",
            &[web2[0], web2[1], ("state", "up")]
        ),
        Some(0.0)
    );
    assert_eq!(metric(&text, "roundel_node_up", &web2), Some(0.0));
    assert_eq!(
        metric(&text, "roundel_node_up", &[("node", "web1")]),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "roundel_node_weight", &[("node", "web1")]),
        Some(1.0)
    );
    assert!(metric(&text, "roundel_node_check_rtt_seconds", &[("node", "web1")]).unwrap() > 0.0);
    assert_eq!(
        metric(&text, "roundel_pool_serving_nodes", &[("pool", POOL)]),
        Some(1.0)
    );
    let t2 = b2.addr.to_string();
    let target = [("target", t2.as_str()), ("check", "http")];
    assert!(
        metric(
            &text,
            "roundel_check_failures_total",
            &[target[0], target[1], ("reason", "refused")]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        metric(
            &text,
            "roundel_check_failures_total",
            &[target[0], ("reason", "timeout")]
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "roundel_check_transitions_total", &target),
        Some(2.0),
        "unknown->up, up->down"
    );
    assert!(metric(&text, "roundel_check_duration_seconds_count", &target).unwrap() >= 2.0);
    assert!(
        metric(
            &text,
            "roundel_check_duration_seconds_bucket",
            &[target[0], ("le", "+Inf")]
        )
        .unwrap()
            >= 2.0
    );
    assert_eq!(metric(&text, "roundel_reloads_total", &[]), Some(1.0));
    assert_eq!(
        metric(&text, "roundel_reloads_failed_total", &[]),
        Some(0.0)
    );
    assert!(metric(&text, "roundel_zone_serial", &[("zone", "ops.test.")]).unwrap() > 0.0);
    assert_eq!(
        metric(
            &text,
            "roundel_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(metric(&text, "roundel_uptime_seconds", &[]).unwrap() > 0.0);
    assert!(metric(&text, "roundel_start_time_seconds", &[]).unwrap() > 1e9);
    assert_eq!(metric(&text, "roundel_query_log_enabled", &[]), Some(1.0));
    let (code, _) = call(
        &c,
        Method::PUT,
        &s.url("/api/v1/query-log"),
        Some(TOKEN),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(code, 200);
}
