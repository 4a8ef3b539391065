//! The status page in a real browser: headless Chromium loads `/`, a backend is stopped,
//! and the page (never reloaded) shows that node down, in red, with the reason.
//!
//! Chromium is driven over the DevTools protocol (a websocket on 127.0.0.1). The test
//! fails, never skips, when Chromium is missing: `.ci/run` installs it (`chromium`).
//! A screenshot is saved to `$CARGO_TARGET_TMPDIR/status-page.png`.

mod ops_support;
mod support_backends;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ops_support::*;
use serde_json::{Value, json};
use support_backends::{Backend, Mode};

/// Where Chromium is looked for (Debian's `chromium` package; `CHROMIUM` overrides).
fn chromium_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return p.into();
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!(
        "Chromium is required for the status page test and was not found \
         (apt-get install chromium, or set CHROMIUM=/path/to/chrome)"
    );
}

/// A headless Chromium, killed on drop.
struct Browser {
    child: Child,
    _profile: TempDir,
    port: u16,
}

impl Browser {
    fn launch() -> Browser {
        let profile = TempDir::new("chromium-profile");
        let child = Command::new(chromium_binary())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1400,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Chromium: {e}"));
        let mut b = Browser {
            child,
            _profile: profile,
            port: 0,
        };
        // Chromium writes the port it picked to DevToolsActivePort.
        let file = b._profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        for _ in 0..600 {
            if let Some(port) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            {
                b.port = port;
                return b;
            }
            if let Ok(Some(status)) = b.child.try_wait() {
                panic!("Chromium exited during start-up: {status}");
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("Chromium did not open its DevTools port within 30 s");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A DevTools protocol session with one page, over a blocking websocket.
struct Page {
    ws: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
}

impl Page {
    fn attach(browser: &Browser) -> Page {
        // The page target opened with about:blank.
        let (status, body) = http_get_blocking(
            format!("127.0.0.1:{}", browser.port).parse().unwrap(),
            "/json/list",
        )
        .expect("DevTools /json/list");
        assert_eq!(status, 200);
        let body = body.trim_start_matches(|c: char| c != '[');
        let list: Value = serde_json::from_str(body).unwrap();
        let url = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let stream = TcpStream::connect(("127.0.0.1", browser.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("websocket handshake");
        Page { ws, next_id: 1 }
    }

    /// Calls `method` and returns its result (events in between are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(tungstenite::Message::Text(msg.to_string().into()))
            .unwrap();
        for _ in 0..10_000 {
            let m = self.ws.read().unwrap_or_else(|e| panic!("{method}: {e}"));
            let tungstenite::Message::Text(text) = m else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
        }
        panic!("{method}: no reply among 10000 messages");
    }

    /// Evaluates `expr` in the page and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expr` every 100 ms until it returns `want` or `bound` passes.
    fn wait_for(&mut self, expr: &str, want: &Value, bound: Duration) -> Value {
        let start = Instant::now();
        let mut last = Value::Null;
        for _ in 0..(bound.as_millis() / 100 + 1) {
            last = self.eval(expr);
            if &last == want {
                return last;
            }
            if start.elapsed() > bound {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{expr}: wanted {want}, still {last} after {bound:?}");
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// One browser at a time: two Chromiums on two cores slow the 100 ms health checks of
/// the other test enough to fail them.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const STATE: &str = r#"(() => { const r = document.querySelector('section[data-pool="web.page.test."] tr[data-label="web2"]'); return r ? r.dataset.state : null; })()"#;
const COLOUR: &str = r#"getComputedStyle(document.querySelector('section[data-pool="web.page.test."] tr[data-label="web2"] .state')).backgroundColor"#;
const REASON: &str = r#"document.querySelector('section[data-pool="web.page.test."] tr[data-label="web2"] td.reason').textContent"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_a_stopped_backend_down_without_a_reload() {
    let _one_at_a_time = ONE_BROWSER.lock().await;
    let browser = tokio::task::block_in_place(Browser::launch);
    let b1 = Backend::http("127.0.0.81", Mode::ok()).await;
    let mut b2 = Backend::http("127.0.0.82", Mode::ok()).await;
    let zones = TempDir::new("page-zones");
    let nodes = [(&b1, "web1"), (&b2, "web2")]
        .iter()
        .map(|(b, l)| {
            format!(
                "{{ addr = \"{}\", label = \"{l}\", check_port = {} }}",
                b.addr.ip(),
                b.port()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    write_atomic(
        &zones.join("page.test.toml"),
        &zone(
            "page.test.",
            "\"auto\"",
            &format!(
                "[pools.web]\ncheck = {{ http = {{ path = \"/health\" }}, interval = \"200ms\", timeout = \"100ms\", fall = 1, rise = 1 }}\nnodes = [{nodes}]\n"
            ),
        ),
    );
    let s = Server::start(zones.path(), Opts::default());
    let url = s.url("/");

    let mut page = tokio::task::block_in_place(|| {
        let mut page = Page::attach(&browser);
        page.call("Page.enable", json!({}));
        page.call("Page.navigate", json!({ "url": url }));
        page.wait_for(STATE, &json!("up"), Duration::from_secs(15));
        // Green while up.
        assert_eq!(page.eval(COLOUR), json!("rgb(30, 142, 62)"));
        assert_eq!(page.eval("document.title"), json!("Roundel status"));
        // A marker that a page reload would wipe.
        page.eval("window.__roundelMarker = 42");
        page
    });

    b2.stop().await;

    tokio::task::block_in_place(|| {
        page.wait_for(STATE, &json!("down"), Duration::from_secs(10));
        assert_eq!(
            page.eval(COLOUR),
            json!("rgb(217, 48, 37)"),
            "red when down"
        );
        let reason = page.eval(REASON);
        assert!(
            reason.as_str().unwrap().contains("connection refused"),
            "{reason}"
        );
        assert_eq!(
            page.eval("window.__roundelMarker"),
            json!(42),
            "the page was reloaded instead of updated in place"
        );
        // web1 is still up, and the header counts one serving node.
        assert_eq!(page.eval(&STATE.replace("web2", "web1")), json!("up"));
        let shot = page.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64_decode(shot["data"].as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"));
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    });
    drop(browser);
}

/// Over 1,000 nodes the page shows one line per pool from the summary, and a click on a
/// pool shows its nodes (fetched alone with `?pool=`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_summarises_a_large_deployment_and_opens_a_pool() {
    let browser = tokio::task::block_in_place(Browser::launch);
    let zones = TempDir::new("page-big");
    let mut body = String::new();
    for p in 0..20 {
        let nodes: Vec<String> = (1..=64).map(|n| format!("\"10.9.{p}.{n}\"")).collect();
        body.push_str(&format!(
            "[pools.p{p:02}]\ncheck = {{ none = true }}\nnodes = [{}]\n",
            nodes.join(", ")
        ));
    }
    write_atomic(&zones.join("big.test.toml"), &zone("big.test.", "1", &body));
    let s = Server::start(zones.path(), Opts::default());
    let url = s.url("/");
    tokio::task::block_in_place(|| {
        let mut page = Page::attach(&browser);
        page.call("Page.enable", json!({}));
        page.call("Page.navigate", json!({ "url": url }));
        page.wait_for(
            "document.querySelectorAll('table.summary tbody tr').length",
            &json!(20),
            Duration::from_secs(15),
        );
        assert_eq!(
            page.eval("document.querySelectorAll('section[data-pool] tr[data-label]').length"),
            json!(0),
            "no node rows in the summary"
        );
        page.eval(r#"document.querySelector('a[data-pool="p07.big.test."]').click()"#);
        page.wait_for(
            r#"(() => { const r = document.querySelector('section[data-pool="p07.big.test."] tr[data-label="10.9.7.64"]'); return r ? r.dataset.state : null; })()"#,
            &json!("up"),
            Duration::from_secs(10),
        );
        // Still updating that pool alone a few polls later.
        page.wait_for(
            "document.querySelectorAll('section[data-pool] tr[data-label]').length",
            &json!(64),
            Duration::from_secs(5),
        );
    });
    drop(browser);
}

const ANSWERING: &str = r#"(() => { const s = document.querySelector('section[data-pool="web.down.test."]'); return s ? s.dataset.answering : null; })()"#;
const BADGE: &str =
    r#"document.querySelector('section[data-pool="web.down.test."] .answering').textContent"#;
const BADGE_COLOUR: &str = r#"getComputedStyle(document.querySelector('section[data-pool="web.down.test."] .answering')).backgroundColor"#;
const TTL_NOW: &str =
    r#"document.querySelector('section[data-pool="web.down.test."] .ttl-now').textContent"#;
const ROW: &str = r#"section[data-pool="web.down.test."] tr[data-label="LABEL"]"#;

/// Every node down in a `serve-all` pool: the page says the pool is all down and serving
/// all (not just "0/2 serving"), with the TTL in force, no stale RTT for the down nodes, a
/// timeline per node, and the MAINT badge still telling the check state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_a_pool_all_down_and_serving_all() {
    let _one_at_a_time = ONE_BROWSER.lock().await;
    let browser = tokio::task::block_in_place(Browser::launch);
    let mut b1 = Backend::http("127.0.0.83", Mode::ok()).await;
    let mut b2 = Backend::http("127.0.0.84", Mode::ok()).await;
    let b3 = Backend::http("127.0.0.85", Mode::ok()).await;
    let zones = TempDir::new("page-down-zones");
    let nodes = [
        (&b1, "web1", ""),
        (&b2, "web2", ""),
        (&b3, "web3", ", maint = true"),
    ]
    .iter()
    .map(|(b, l, extra)| {
        format!(
            "{{ addr = \"{}\", label = \"{l}\", check_port = {}{extra} }}",
            b.addr.ip(),
            b.port()
        )
    })
    .collect::<Vec<_>>()
    .join(", ");
    write_atomic(
        &zones.join("down.test.toml"),
        &zone(
            "down.test.",
            "\"auto\"",
            &format!(
                "[pools.web]\ncheck = {{ http = {{ path = \"/health\" }}, interval = \"200ms\", timeout = \"100ms\", fall = 1, rise = 1 }}\nttl = 40\ndegraded_ttl = 7\nall_down = \"serve-all\"\nnodes = [{nodes}]\n"
            ),
        ),
    );
    let s = Server::start(zones.path(), Opts::default());
    let url = s.url("/");
    let mut page = tokio::task::block_in_place(|| {
        let mut page = Page::attach(&browser);
        page.call("Page.enable", json!({}));
        page.call("Page.navigate", json!({ "url": url }));
        page.wait_for(ANSWERING, &json!("normal"), Duration::from_secs(15));
        assert_eq!(page.eval(TTL_NOW), json!("answer TTL now 40 s"));
        // Maintenance still shows what the check sees.
        let check = format!(
            "document.querySelector('{} .check-state').textContent",
            ROW.replace("LABEL", "web3")
        );
        assert_eq!(page.eval(&check), json!("check up"));
        page
    });

    b1.stop().await;
    b2.stop().await;
    let c = client();
    eventually(
        Duration::from_secs(10),
        "both nodes down in the API",
        || async {
            get(&c, &s.url("/api/v1/pools/web.down.test")).await["answering"]["state"] == "all-down"
        },
    )
    .await;
    // Fail-open: the dead addresses are still handed out, and the API, metrics say so.
    assert_eq!(
        addrs(&query(s.dns, "web.down.test.", A)),
        ["127.0.0.83", "127.0.0.84"]
    );
    let p = get(&c, &s.url("/api/v1/pools/web.down.test")).await;
    assert_eq!(p["answering"]["all_down_mode"], "serve-all", "{p}");
    assert_eq!(p["answering"]["ttl"], 7, "{p}");
    assert_eq!(p["serving"], 0);
    for n in p["nodes"].as_array().unwrap().iter().take(2) {
        assert!(
            n["rtt_ms"].is_null() && n["srtt_ms"].is_null(),
            "stale RTT: {n}"
        );
    }
    let metrics = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("roundel_pool_answering{pool=\"web.down.test.\",state=\"all-down\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("roundel_pool_answer_ttl_seconds{pool=\"web.down.test.\"} 7"),
        "{metrics}"
    );

    tokio::task::block_in_place(|| {
        page.wait_for(ANSWERING, &json!("all-down"), Duration::from_secs(10));
        let badge = page.eval(BADGE);
        assert!(
            badge.as_str().unwrap().contains("all down: serving all"),
            "{badge}"
        );
        assert_eq!(page.eval(BADGE_COLOUR), json!("rgb(217, 48, 37)"));
        assert_eq!(page.eval(TTL_NOW), json!("answer TTL now 7 s"));
        let rtt = format!(
            "document.querySelector('{}').children[5].textContent",
            ROW.replace("LABEL", "web1")
        );
        assert_eq!(page.eval(&rtt), json!("\u{2013}"), "no RTT for a down node");
        // The timeline ends with the current state: red for web1, blue for web3.
        for (label, colour) in [("web1", "#d93025"), ("web3", "#1a73e8")] {
            let last = format!(
                "(() => {{ const r = document.querySelectorAll('{} svg.timeline rect'); return r.length ? r[r.length - 1].getAttribute('fill') : null; }})()",
                ROW.replace("LABEL", label)
            );
            assert_eq!(page.eval(&last), json!(colour), "{label}");
        }
        let shot = page.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64_decode(shot["data"].as_str().unwrap());
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page-all-down.png");
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    });
    drop(browser);
}
