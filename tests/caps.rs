//! Caps that keep a valid configuration from exhausting the server: the number of health
//! probes (checked by `roundel check` and at load, with file, line and key) and the number
//! of checks in flight at once (measured at a real backend that never answers).

mod ops_support;

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_support::daemon::{Daemon, run};
use ops_support::*;

/// A zone with `pools` pools of 64 nodes each, every node its own probe target.
fn many_pools(origin: &str, pools: usize) -> String {
    let mut z = zone(origin, "1", "[checks.t]\ntcp = { port = 9 }\n");
    for p in 0..pools {
        let nodes: Vec<String> = (0..64)
            .map(|n| format!("\"10.{}.{}.{}\"", p / 200, p % 200, n + 1))
            .collect();
        z.push_str(&format!(
            "[pools.p{p:03}]\ncheck = \"t\"\nnodes = [{}]\n",
            nodes.join(", ")
        ));
    }
    z
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l == needle)
        .expect("needle in text")
        + 1
}

#[test]
fn zone_sets_over_the_probe_cap_are_rejected_with_file_line_and_key() {
    let dir = TempDir::new("probecap");
    // 64 pools x 64 targets = 4096 probes: exactly the default cap.
    let at_cap = many_pools("cap.test.", 64);
    std::fs::write(dir.join("big.toml"), &at_cap).unwrap();
    let (code, out, err) = run(&["check", "big.toml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");

    // One pool more: the 65th pool (p064) crosses the cap.
    let over = many_pools("cap.test.", 65);
    std::fs::write(dir.join("big.toml"), &over).unwrap();
    let (code, out, _) = run(&["check", "big.toml"], dir.path());
    assert_eq!(code, 1, "{out}");
    let line = line_of(&over, "[pools.p064]");
    let want = format!(
        "big.toml:{line}:8: pools.p064: this pool brings the health probes (distinct check target and check) over the limit of 4096: 4160 so far"
    );
    assert!(out.starts_with(&want), "want {want}\ngot  {out}");

    // The cap from the server configuration, for check and for serve.
    let small = many_pools("small.test.", 2);
    std::fs::remove_file(dir.join("big.toml")).unwrap();
    std::fs::write(dir.join("small.toml"), &small).unwrap();
    let conf_dir = TempDir::new("probecap-conf");
    std::fs::write(
        conf_dir.join("roundel.toml"),
        "[health]\nmax_probes = 100\n",
    )
    .unwrap();
    let conf = conf_dir.join("roundel.toml");
    let (code, out, _) = run(
        &["check", "--config", conf.to_str().unwrap(), "small.toml"],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}");
    let line = line_of(&small, "[pools.p001]");
    assert!(
        out.starts_with(&format!(
            "small.toml:{line}:8: pools.p001: this pool brings the health probes"
        )),
        "{out}"
    );
    let (code, out, _) = run(&["check", "small.toml"], dir.path());
    assert_eq!(code, 0, "{out}");

    let zones = dir.path().to_str().unwrap();
    let config = conf_dir.join("roundel.toml");
    let log = match Daemon::start(&[
        "--no-admin",
        "--zones",
        zones,
        "--config",
        config.to_str().unwrap(),
    ]) {
        Ok(_) => panic!("served a zone set over the probe cap"),
        Err(log) => log,
    };
    assert!(
        log.contains(&format!(
            "small.toml:{line}:8: pools.p001: this pool brings the health probes"
        )),
        "{log}"
    );
}

/// When a connection was opened and, once it is, closed.
type Lifetimes = Vec<(Instant, Option<Instant>)>;

/// A backend that accepts connections and never answers; each is held until the client
/// closes it, and its open and close times are recorded.
struct Hanging {
    port: u16,
    conns: Arc<Mutex<Lifetimes>>,
}

/// Closing a timed-out check's socket lags its end by a few milliseconds (the HTTP
/// client's connection task): overlaps shorter than this are not concurrency.
const CLOSE_SLACK: Duration = Duration::from_millis(100);

impl Hanging {
    fn total(&self) -> usize {
        self.conns.lock().unwrap().len()
    }

    /// Most connections open together for longer than [`CLOSE_SLACK`].
    fn most_at_once(&self) -> usize {
        let now = Instant::now();
        let v: Vec<(Instant, Instant)> = self
            .conns
            .lock()
            .unwrap()
            .iter()
            .map(|&(a, b)| (a, b.unwrap_or(now)))
            .collect();
        v.iter()
            .map(|&(at, _)| {
                v.iter()
                    .filter(|&&(a, b)| a <= at && at + CLOSE_SLACK < b)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }
}

fn hanging_backend() -> Hanging {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let conns = Arc::new(Mutex::new(Vec::new()));
    let h = Hanging {
        port,
        conns: conns.clone(),
    };
    std::thread::spawn(move || {
        for s in l.incoming().take(100_000) {
            let Ok(mut s) = s else { continue };
            let i = {
                let mut c = conns.lock().unwrap();
                c.push((Instant::now(), None));
                c.len() - 1
            };
            let conns = conns.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = [0u8; 1024];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                conns.lock().unwrap()[i].1 = Some(Instant::now());
            });
        }
    });
    h
}

#[test]
fn checks_in_flight_are_capped() {
    let backend = hanging_backend();
    let dir = TempDir::new("inflight");
    // 40 probes (distinct Host headers) of one hanging backend, 1 s timeout.
    let nodes: Vec<String> = (1..=40)
        .map(|i| {
            format!(
                "{{ addr = \"192.0.2.{i}\", check_addr = \"127.0.0.1\", check_host = \"h{i}.test\" }}"
            )
        })
        .collect();
    let body = format!(
        "[pools.web]\ncheck = {{ http = {{ port = {} }}, interval = \"2s\", timeout = \"1s\" }}\nnodes = [{}]\n",
        backend.port,
        nodes.join(", ")
    );
    write_atomic(&dir.join("w.toml"), &zone("inflight.test.", "1", &body));
    let conf_dir = TempDir::new("inflight-conf");
    let config = conf_dir.join("roundel.toml");
    std::fs::write(&config, "[health]\nmax_probes_in_flight = 4\n").unwrap();
    let d = Daemon::start(&[
        "--no-admin",
        "--zones",
        dir.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ])
    .unwrap();
    // Every probe has connected at least once (40 / 4 x 1 s = 10 s), bounded.
    let start = Instant::now();
    while backend.total() < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {} checks within 30 s",
            backend.total()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let most = backend.most_at_once();
    assert!(
        (2..=4).contains(&most),
        "{most} checks were open at once (cap 4)"
    );
    drop(d);
}

/// A zone of `pools` pools of 64 nodes with `none` checks (no probes: any size loads).
fn unchecked_pools(origin: &str, pools: usize) -> String {
    let mut z = zone(origin, "1", "");
    for p in 0..pools {
        let nodes: Vec<String> = (0..64)
            .map(|n| format!("\"10.{}.{}.{}\"", p / 200, p % 200, n + 1))
            .collect();
        z.push_str(&format!(
            "[pools.p{p:03}]\ncheck = {{ none = true }}\nnodes = [{}]\n",
            nodes.join(", ")
        ));
    }
    z
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_a_large_deployment_is_summarised_and_paged() {
    let dir = TempDir::new("bigstatus");
    write_atomic(&dir.join("big.toml"), &unchecked_pools("big.test.", 40));
    let d = Daemon::start(&["--zones", dir.path().to_str().unwrap()]).unwrap();
    let c = client();

    // 2,560 nodes: a summary by default, not 1.5 MB of node detail.
    let resp = c.get(d.url("/api/v1/status")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
    let s: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(s["summary"], true);
    assert_eq!(s["pools"].as_array().unwrap().len(), 0);
    assert_eq!(s["pools_total"], 40);
    assert_eq!(s["totals"]["nodes"], 2560);
    assert_eq!(s["totals"]["serving"], 2560);
    let sums = s["pool_summaries"].as_array().unwrap();
    assert_eq!(sums.len(), 40);
    assert_eq!(sums[3]["name"], "p003.big.test.");
    assert_eq!(sums[3]["nodes"], 64);
    assert_eq!(sums[3]["serving"], 64);
    assert_eq!(s["reload"]["last"]["ok"], true);

    // A page of full pools.
    let s = get(&c, &d.url("/api/v1/status?page=1&limit=15")).await;
    assert_eq!(s["summary"], false);
    let pools = s["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 15);
    assert_eq!(pools[0]["name"], "p015.big.test.");
    assert_eq!(pools[0]["nodes"].as_array().unwrap().len(), 64);
    assert_eq!(
        (s["page"].clone(), s["pages"].clone()),
        (1.into(), 3.into())
    );
    let s = get(&c, &d.url("/api/v1/status?page=2&limit=15")).await;
    assert_eq!(s["pools"].as_array().unwrap().len(), 10);

    // One pool.
    let s = get(&c, &d.url("/api/v1/status?pool=p039.big.test")).await;
    let pools = s["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0]["name"], "p039.big.test.");
    assert_eq!(node(&s, "p039.big.test.", "10.0.39.64")["state"], "up");

    // Summaries, paged.
    let s = get(&c, &d.url("/api/v1/status?summary=true&page=3&limit=10")).await;
    assert_eq!(s["pool_summaries"][0]["name"], "p030.big.test.");

    // /api/v1/pools pages the same way, with X-Total-Count and Link headers.
    let r = c.get(d.url("/api/v1/pools")).send().await.unwrap();
    assert_eq!(r.headers()["x-total-count"], "40");
    assert_eq!(
        r.headers()["link"],
        "</api/v1/pools?page=1&limit=10>; rel=\"next\""
    );
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 10);
    let r = c
        .get(d.url("/api/v1/pools?page=3&limit=10"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_none());
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v[9]["name"], "p039.big.test.");

    // roundel ctl status shows the summary.
    let out = std::process::Command::new(ops_support::daemon::BIN)
        .args([
            "ctl",
            "--server",
            &format!("http://{}", d.admin.unwrap()),
            "status",
        ])
        .env_remove("ROUNDEL_ADMIN_TOKEN")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("40 pools, 2560 nodes: 2560 serving, 0 down"),
        "{text}"
    );
    assert!(text.contains("p039.big.test."), "{text}");

    // Bad requests say why.
    for (q, want) in [
        ("?limit=0", "limit must be from 1 to 50"),
        ("?limit=51", "limit must be from 1 to 50"),
        ("?page=9&limit=10", "page must be below 4"),
        ("?pool=nope.big.test", "no pool named nope.big.test."),
        ("?color=red", "unknown field"),
    ] {
        let (st, v) = call(
            &c,
            reqwest::Method::GET,
            &d.url(&format!("/api/v1/status{q}")),
            None,
            None,
        )
        .await;
        assert!(st == 400 || st == 404, "{q}: {st} {v}");
        assert!(v["error"].as_str().unwrap_or("").contains(want), "{q}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_can_require_a_token() {
    let zones = TempDir::new("readtoken");
    write_atomic(
        &zones.join("r.toml"),
        &zone(
            "read.test.",
            "1",
            "[pools.web]\ncheck = { none = true }\nnodes = [\"192.0.2.1\"]\n",
        ),
    );
    let conf = TempDir::new("readtoken-conf");
    let file = conf.join("roundel.toml");
    std::fs::write(&file, "[admin]\nread_token = \"r3ad\"\ntoken = \"wr1te\"\n").unwrap();
    let d = Daemon::start(&[
        "--zones",
        zones.path().to_str().unwrap(),
        "--config",
        file.to_str().unwrap(),
    ])
    .unwrap();
    let c = client();
    for path in [
        "/api/v1/status",
        "/api/v1/pools",
        "/metrics",
        "/",
        "/api/v1/reload",
    ] {
        let r = c.get(d.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a token");
        let auth: Vec<_> = r.headers().get_all("www-authenticate").iter().collect();
        assert!(
            auth.iter()
                .any(|v| v.to_str().unwrap().starts_with("Basic")),
            "{path}: {auth:?}"
        );
        let r = c.get(d.url(path)).bearer_auth("nope").send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong token");
        for (name, req) in [
            ("bearer", c.get(d.url(path)).bearer_auth("r3ad")),
            (
                "lower-case bearer",
                c.get(d.url(path)).header("authorization", "bearer r3ad"),
            ),
            (
                "basic",
                c.get(d.url(path)).basic_auth("anyone", Some("r3ad")),
            ),
            ("admin token", c.get(d.url(path)).bearer_auth("wr1te")),
        ] {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200, "{path} with the {name}");
        }
    }
    // The read token cannot change anything.
    let (st, _) = call(
        &c,
        reqwest::Method::POST,
        &d.url("/api/v1/reload"),
        Some("r3ad"),
        None,
    )
    .await;
    assert_eq!(st, 401);
    let (st, _) = call(
        &c,
        reqwest::Method::POST,
        &d.url("/api/v1/reload"),
        Some("wr1te"),
        None,
    )
    .await;
    assert_eq!(st, 200);

    // roundel ctl sends it.
    let server = format!("http://{}", d.admin.unwrap());
    let ctl = |extra: &[&str]| {
        let out = std::process::Command::new(ops_support::daemon::BIN)
            .args(["ctl", "--server", &server])
            .args(extra)
            .arg("status")
            .env_remove("ROUNDEL_ADMIN_TOKEN")
            .env_remove("ROUNDEL_READ_TOKEN")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = ctl(&[]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("401"), "{out}");
    let (code, out) = ctl(&["--read-token", "r3ad"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("web.read.test."), "{out}");
}
