//! `/metrics` content negotiation: the classic Prometheus text format by default, which
//! `promtool check metrics` accepts, and OpenMetrics when `Accept` asks for it. A server
//! with a pool (real HTTP backends on 127.0.0.144-145, one stopped) and some queries, so
//! every kind of family is present.

mod ops_support;
mod support_backends;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use ops_support::*;
use support_backends::{Backend, Mode};

async fn scrape(c: &reqwest::Client, s: &Server, accept: Option<&str>) -> (String, String) {
    let mut r = c.get(s.url("/metrics"));
    if let Some(a) = accept {
        r = r.header("accept", a);
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    (ct, r.text().await.unwrap())
}

/// `promtool check metrics` on `text`: exit status and output.
fn promtool(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_by_default_openmetrics_on_request() {
    let b1 = Backend::http("127.0.0.144", Mode::ok()).await;
    let mut b2 = Backend::http("127.0.0.145", Mode::ok()).await;
    let zones = TempDir::new("metrics-format");
    let nodes: Vec<String> = [&b1, &b2]
        .iter()
        .map(|b| {
            format!(
                "{{ addr = \"{}\", check_port = {} }}",
                b.addr.ip(),
                b.port()
            )
        })
        .collect();
    write_atomic(
        &zones.join("ops.test.toml"),
        &zone(
            "ops.test.",
            "\"auto\"",
            &format!(
                "[pools.web]\ncheck = {{ http = {{ path = \"/\", reuse_connection = true }}, interval = \"200ms\", timeout = \"100ms\", fall = 1, rise = 1 }}\nnodes = [{}]\n",
                nodes.join(", ")
            ),
        ),
    );
    let s = Server::start(zones.path(), Opts::default());
    let c = client();
    b2.stop().await;
    eventually(Duration::from_secs(5), "one node left", || async {
        addrs(&query(s.dns, "web.ops.test.", A)) == ["127.0.0.144"]
    })
    .await;
    for _ in 0..5 {
        query(s.dns, "nothing.ops.test.", A);
    }

    let (ct, classic) = scrape(&c, &s, None).await;
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!classic.contains("# EOF"), "no OpenMetrics terminator");
    assert!(!classic.contains("# UNIT"), "no OpenMetrics units");
    assert!(
        classic.contains("# TYPE roundel_dns_queries_total counter"),
        "{classic}"
    );
    assert!(
        classic
            .lines()
            .any(|l| l.starts_with("roundel_dns_queries_total{")),
        "{classic}"
    );
    // The kept-connection gauges: the backends answer `Connection: close`, so nothing is
    // kept, under a bound the descriptor budget leaves.
    let gauge = |name: &str| -> f64 {
        let prefix = format!("{name} ");
        classic
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {name}:\n{classic}"))
            .parse()
            .unwrap()
    };
    assert_eq!(gauge("roundel_check_connections_kept"), 0.0);
    assert!(gauge("roundel_check_connections_kept_max") > 0.0);
    let (ok, out) = promtool(&classic);
    assert!(
        ok,
        "promtool check metrics rejects the classic text:\n{out}\n{classic}"
    );

    let (ct, text) = scrape(&c, &s, Some("text/plain;version=0.0.4;q=0.9,*/*;q=0.1")).await;
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert_eq!(text.lines().count(), classic.lines().count());

    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (ct, om) = scrape(&c, &s, Some(prometheus)).await;
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    assert!(
        om.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    assert!(om.contains("# TYPE roundel_dns_queries counter"), "{om}");
}
