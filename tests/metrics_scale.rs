//! `GET /metrics` of a deployment at the probe cap: 64 pools of 64 nodes, every node its own
//! health check target (4,096 probes, the default `max_probes`), probed on loopback. The
//! scrape must stay a few MB and well under a second, with every node's series in it
//! (10.5 MB and 0.9 s with per-target duration buckets and every failure reason; 4.9 MB
//! and 0.2-0.3 s in a debug build since).

mod ops_support;

use std::time::{Duration, Instant};

use ops_support::daemon::Daemon;
use ops_support::*;

/// `pools` pools of 64 nodes, each node a distinct loopback address checked on TCP port 9
/// (nothing listens there: the checks fail fast with a refused connection).
fn checked_pools(origin: &str, pools: usize) -> String {
    let mut z = zone(
        origin,
        "1",
        "[checks.t]\ntcp = { port = 9 }\ninterval = \"2s\"\n",
    );
    for p in 0..pools {
        let nodes: Vec<String> = (0..64)
            .map(|n| format!("\"127.{}.{}.{}\"", 1 + p / 200, p % 200, n + 1))
            .collect();
        z.push_str(&format!(
            "[pools.p{p:03}]\ncheck = \"t\"\nnodes = [{}]\n",
            nodes.join(", ")
        ));
    }
    z
}

fn count(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_at_the_probe_cap_stay_small_and_fast() {
    let dir = TempDir::new("bigmetrics");
    write_atomic(&dir.join("big.toml"), &checked_pools("big.test.", 64));
    let d = Daemon::start(&["--zones", dir.path().to_str().unwrap()]).unwrap();
    let c = client();

    // Wait (bounded) until every target has been checked once, so that every check series
    // is in the scrape.
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = c
            .get(d.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if count(&text, "roundel_check_duration_seconds_count{") == 4096 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "not every target checked within 60 s: {}",
            count(&text, "roundel_check_duration_seconds_count{")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(count(&text, "roundel_node_up{"), 4096);
    assert_eq!(count(&text, "roundel_node_state{"), 5 * 4096);
    // Per target: count and sum; the buckets per kind of check; TCP's three reasons.
    assert_eq!(count(&text, "roundel_check_duration_seconds_bucket{"), 4096);
    assert_eq!(
        count(&text, "roundel_check_kind_duration_seconds_bucket{"),
        12
    );
    assert_eq!(count(&text, "roundel_check_failures_total{"), 3 * 4096);
    let total: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("roundel_check_kind_duration_seconds_count{check=\"tcp\"} "))
        .and_then(|v| v.parse().ok())
        .expect("the tcp checks' count");
    assert!(total >= 4096.0, "{total}");

    // Five scrapes: the largest and the slowest.
    let (mut most, mut slowest) = (0, Duration::ZERO);
    for _ in 0..5 {
        let start = Instant::now();
        let body = c
            .get(d.url("/metrics"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        slowest = slowest.max(start.elapsed());
        most = most.max(body.len());
    }
    eprintln!(
        "/metrics at 4,096 probes: {} bytes, {} lines, slowest of 5 scrapes {slowest:?}",
        most,
        text.lines().count()
    );
    assert!(most < 6 << 20, "{most} bytes");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
}
