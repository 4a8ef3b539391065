//! `GET /api/v1/explain` is read-only and explains exactly the answer it reports: asking
//! it draws no rotation counter, records no served time, and its answer is the one the
//! next query gets.

mod ops_support;

use ops_support::*;
use serde_json::Value;

fn get_json(s: &Server, path: &str) -> Value {
    let (status, body) = http_get_blocking(s.admin, path).expect("admin API answers");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn answer_addrs(explain: &Value) -> Vec<String> {
    explain["response"]["answer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["data"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn explain_changes_nothing_and_reports_the_next_answer() {
    let zones = TempDir::new("explain-readonly");
    write_atomic(
        &zones.join("ro.test.toml"),
        &zone(
            "ro.test.",
            "1",
            "[checks.none]\nnone = true\n[pools.web]\ncheck = \"none\"\nttl = 30\n\
             nodes = [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\"]\n",
        ),
    );
    let s = Server::start(zones.path(), Opts::default());
    let path = "/api/v1/explain?name=web.ro.test&type=A";

    let first = get_json(&s, path);
    let reported = answer_addrs(&first);
    assert_eq!(reported.len(), 3, "{first}");
    // Asked again: the same answer, since explaining drew no counter.
    for _ in 0..3 {
        assert_eq!(answer_addrs(&get_json(&s, path)), reported);
    }
    // Its verdicts are those of that very answer: rank i for the i-th address.
    let nodes = first["pools"][0]["nodes"].as_array().unwrap();
    for (rank, addr) in reported.iter().enumerate() {
        let n = nodes.iter().find(|n| n["addr"] == addr.as_str()).unwrap();
        assert_eq!(n["rank"], rank, "{first}");
    }
    // Nothing was served: no node has a last-served time.
    let pool = get_json(&s, "/api/v1/pools/web.ro.test.");
    for n in pool["nodes"].as_array().unwrap() {
        assert!(n["last_served"].is_null(), "explain recorded a serve: {n}");
    }
    // The next query gets the answer explain reported.
    assert_eq!(addrs(&query(s.dns, "web.ro.test.", A)), reported);
    let pool = get_json(&s, "/api/v1/pools/web.ro.test.");
    assert!(
        pool["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| !n["last_served"].is_null()),
        "a real answer records its serves: {pool}"
    );
}
