//! Validation tests: every accepted form, and every rejected input naming line, column
//! and key.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;
use serde::Deserialize;
use toml::Spanned;

use super::*;
use crate::source::{SourceMap, ZoneError};

/// The slice of a zone file this module owns.
#[derive(Deserialize)]
struct Zone {
    #[serde(default)]
    checks: BTreeMap<Spanned<String>, RawCheck>,
    #[serde(default)]
    pools: BTreeMap<Spanned<String>, RawPool>,
}

fn origin() -> Name {
    Name::from_ascii("example.com.").unwrap()
}

fn run(text: &str) -> (Vec<PoolSpec>, Vec<ZoneError>) {
    let zone: Zone = toml::from_str(text).expect("test TOML parses");
    let mut map = SourceMap::new(Path::new("z.toml"), text);
    let pools = validate(&mut map, &origin(), zone.checks, zone.pools);
    (pools, map.into_errors())
}

fn ok(text: &str) -> Vec<PoolSpec> {
    let (pools, errors) = run(text);
    assert!(errors.is_empty(), "unexpected errors: {errors:#?}");
    pools
}

/// Asserts exactly one error, at the first occurrence of `needle` (`nth` occurrence when
/// given as `needle#n`), for `key`, with a reason containing `reason`.
#[track_caller]
fn rejects(text: &str, needle: &str, key: &str, reason: &str) {
    let (needle, nth) = match needle.rsplit_once('#') {
        Some((n, i)) => (n, i.parse::<usize>().unwrap()),
        None => (needle, 0),
    };
    let at = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("needle {needle:?} not in text"))
        .0;
    let map = SourceMap::new(Path::new("z.toml"), text);
    let (line, column) = map.position(at);
    let (pools, errors) = run(text);
    assert!(pools.is_empty(), "the bad pool must be left out");
    assert_eq!(errors.len(), 1, "errors: {errors:#?}");
    let e = &errors[0];
    assert_eq!((e.line, e.column), (line, column), "position of {e}");
    assert_eq!(e.key, key, "key of {e}");
    assert!(e.reason.contains(reason), "reason of {e} lacks {reason:?}");
    // The rendered message carries all of it.
    assert!(
        e.to_string()
            .starts_with(&format!("z.toml:{line}:{column}: {key}: "))
    );
}

const NODES: &str = r#"nodes = ["192.0.2.10"]"#;

#[test]
fn issue_example_validates_with_defaults() {
    let pools = ok(r#"
[checks.web]
http = { port = 8080, path = "/health", expect = [200] }
interval = "1s"
timeout = "500ms"
fall = 2
rise = 2

[pools.web]
check = "web"
policy = "round-robin"
nodes = ["192.0.2.10", "192.0.2.11", { addr = "192.0.2.12", weight = 3 }, "2001:db8::10"]
"#);
    assert_eq!(pools.len(), 1);
    let p = &pools[0];
    assert_eq!(p.name, Name::from_ascii("web.example.com.").unwrap());
    assert_eq!(p.key, "web");
    assert_eq!(p.ttl, spec::DEFAULT_TTL);
    assert_eq!(p.degraded_ttl, spec::DEFAULT_TTL / 2);
    assert_eq!(p.policy, Policy::RoundRobin);
    assert_eq!(p.max_answers as usize, spec::MAX_ANSWERS);
    assert_eq!(p.min_healthy, MinHealthy::Count(1));
    assert_eq!(p.all_down, AllDown::ServeAll);
    assert_eq!(p.slow_start, None);
    assert_eq!(p.check.interval, Duration::from_secs(1));
    assert_eq!(p.check.timeout, Duration::from_millis(500));
    let CheckKind::Http(h) = &p.check.kind else {
        panic!("http check expected")
    };
    assert_eq!(
        (h.port, h.path.as_str(), h.method.as_str()),
        (8080, "/health", "GET")
    );
    assert_eq!(h.expect, vec![StatusRange { lo: 200, hi: 200 }]);
    assert_eq!(h.max_body, spec::DEFAULT_MAX_BODY);
    assert!(h.verify_tls);
    assert_eq!(p.nodes.len(), 4);
    assert_eq!(p.nodes[2].weight, 3);
    assert_eq!(p.nodes[2].probe.port, 8080);
    assert_eq!(p.nodes[3].addr, "2001:db8::10".parse::<IpAddr>().unwrap());
    assert_eq!(p.nodes[0].label, "192.0.2.10");
    assert!(p.nodes.iter().all(|n| n.tier == 1 && !n.maint));
}

#[test]
fn check_defaults_detect_a_dead_node_within_1_5_s() {
    let pools = ok(&format!(
        "[pools.a]\ncheck = {{ tcp = {{ port = 22 }} }}\n{NODES}\n"
    ));
    let c = &pools[0].check;
    assert_eq!(
        (c.interval, c.timeout, c.fall, c.rise),
        (spec::DEFAULT_INTERVAL, spec::DEFAULT_TIMEOUT, 2, 2)
    );
    assert!(c.detection_time() <= Duration::from_millis(1500));
}

#[test]
fn names_relative_absolute_and_apex() {
    let text = format!(
        r#"
[checks.t]
tcp = {{ port = 80 }}
[pools."@"]
check = "t"
{NODES}
[pools."web.eu"]
check = "t"
{NODES}
[pools."abs.example.com."]
check = "t"
{NODES}
"#
    );
    let names: Vec<String> = ok(&text).iter().map(|p| p.name.to_string()).collect();
    assert_eq!(
        names,
        ["example.com.", "abs.example.com.", "web.eu.example.com."]
    );
}

#[test]
fn same_named_check_is_one_shared_spec() {
    let pools = ok(&format!(
        "[checks.t]\ntcp = {{ port = 80 }}\n[pools.a]\ncheck = \"t\"\n{NODES}\n[pools.b]\ncheck = \"t\"\n{NODES}\n"
    ));
    assert!(Arc::ptr_eq(&pools[0].check, &pools[1].check));
}

#[test]
fn full_settings_are_read() {
    let pools = ok(r#"
[pools.api]
check = { https = { port = 8443, method = "HEAD", path = "/h?x=1", host = "api.example.com", sni = "api.example.com", expect = [200, "300-302"], headers = { "X-Probe" = "roundel" }, max_body = 100, verify_tls = false, weight_header = "X-Weight" }, interval = "2s", timeout = "1s", rise = 3, fall = 4 }
policy = "client-hash"
ttl = 30
degraded_ttl = 5
max_answers = 2
min_healthy = "50%"
all_down = "last-healthy"
slow_start = "1m"
nodes = [
  { addr = "2001:db8::1", label = "v6", weight = 10, tier = 2, check_addr = "10.0.0.1", check_port = 9443, check_host = "n1.example.com" },
  { addr = "192.0.2.1", maint = true },
]
"#);
    let p = &pools[0];
    assert_eq!(p.policy, Policy::ClientHash);
    assert_eq!((p.ttl, p.degraded_ttl, p.max_answers), (30, 5, 2));
    assert_eq!(p.min_healthy, MinHealthy::Permille(500));
    assert_eq!(p.all_down, AllDown::LastHealthy);
    assert_eq!(p.slow_start, Some(Duration::from_secs(60)));
    let c = &p.check;
    assert_eq!((c.rise, c.fall), (3, 4));
    let CheckKind::Http(h) = &c.kind else {
        panic!()
    };
    assert!(h.tls && !h.verify_tls);
    assert_eq!(h.method, "HEAD");
    assert_eq!(h.expect[1], StatusRange { lo: 300, hi: 302 });
    assert_eq!(
        h.headers,
        vec![("x-probe".to_owned(), "roundel".to_owned())]
    );
    assert_eq!(h.weight_from, Some(WeightSource::Header("x-weight".into())));
    let n = &p.nodes[0];
    assert_eq!((n.label.as_str(), n.weight, n.tier), ("v6", 10, 2));
    assert_eq!(
        n.probe,
        ProbeTarget {
            addr: "10.0.0.1".parse().unwrap(),
            port: 9443,
            host: Some("n1.example.com".into())
        }
    );
    assert!(p.nodes[1].maint);
    assert_eq!(p.nodes[1].probe.port, 8443);
}

#[test]
fn min_healthy_forms() {
    for (v, want) in [
        ("2", MinHealthy::Count(2)),
        ("0.25", MinHealthy::Permille(250)),
        ("1.0", MinHealthy::Permille(1000)),
        ("\"100%\"", MinHealthy::Permille(1000)),
    ] {
        let pools = ok(&format!(
            "[pools.a]\ncheck = {{ none = true }}\nmin_healthy = {v}\n{NODES}\n"
        ));
        assert_eq!(pools[0].min_healthy, want, "{v}");
    }
    assert_eq!(MinHealthy::Permille(500).required(3), 2);
    assert_eq!(MinHealthy::Permille(1).required(3), 1);
    assert_eq!(MinHealthy::Count(2).required(9), 2);
    assert_eq!(
        MinHealthy::Count(3).required(1),
        1,
        "capped at the tier size"
    );
}

#[test]
fn rejects_empty_node_list() {
    rejects(
        "[pools.web]\ncheck = { none = true }\nnodes = []\n",
        "[]",
        "pools.web.nodes",
        "at least one node",
    );
}

#[test]
fn rejects_missing_nodes_and_missing_check() {
    rejects(
        "[pools.web]\ncheck = { none = true }\n",
        "web",
        "pools.web",
        "needs nodes",
    );
    rejects(
        &format!("[pools.web]\n{NODES}\n"),
        "web",
        "pools.web",
        "needs a check",
    );
}

#[test]
fn rejects_duplicate_node_addresses() {
    rejects(
        "[pools.web]\ncheck = { none = true }\nnodes = [\"192.0.2.1\", \"192.0.2.2\", { addr = \"192.0.2.1\" }]\n",
        "\"192.0.2.1\"#1",
        "pools.web.nodes[2]",
        "duplicate node address 192.0.2.1",
    );
}

#[test]
fn rejects_bad_addresses() {
    rejects(
        "[pools.web]\ncheck = { none = true }\nnodes = [\"192.0.2.1\", { addr = \"192.0.2.999\" }]\n",
        "\"192.0.2.999\"",
        "pools.web.nodes[1].addr",
        "not an IPv4 or IPv6 address",
    );
    rejects(
        "[pools.web]\ncheck = { none = true }\nnodes = [\"www\"]\n",
        "\"www\"",
        "pools.web.nodes[0]",
        "not an IPv4 or IPv6 address",
    );
    rejects(
        "[pools.web]\ncheck = { none = true }\nnodes = [\"0.0.0.0\"]\n",
        "\"0.0.0.0\"",
        "pools.web.nodes[0]",
        "cannot be a node address",
    );
    rejects(
        "[pools.web]\ncheck = { none = true }\nnodes = [{ weight = 2 }]\n",
        "{ weight",
        "pools.web.nodes[0]",
        "needs addr",
    );
}

#[test]
fn rejects_unknown_check_name() {
    rejects(
        &format!("[checks.web]\ntcp = {{ port = 80 }}\n[pools.web]\ncheck = \"wbe\"\n{NODES}\n"),
        "\"wbe\"",
        "pools.web.check",
        "unknown check \"wbe\"; defined checks: web",
    );
}

#[test]
fn a_broken_named_check_is_reported_once() {
    rejects(
        &format!("[checks.web]\ntcp = {{ port = 0 }}\n[pools.web]\ncheck = \"web\"\n{NODES}\n"),
        "0 }",
        "checks.web.tcp.port",
        "must be 1..=65535",
    );
}

#[test]
fn rejects_bad_durations() {
    rejects(
        &format!(
            "[checks.c]\ntcp = {{ port = 80 }}\ninterval = \"1\"\n[pools.a]\ncheck = \"c\"\n{NODES}\n"
        ),
        "\"1\"",
        "checks.c.interval",
        "missing unit",
    );
    rejects(
        &format!(
            "[checks.c]\ntcp = {{ port = 80 }}\ntimeout = \"1 sec\"\n[pools.a]\ncheck = \"c\"\n{NODES}\n"
        ),
        "\"1 sec\"",
        "checks.c.timeout",
        "missing unit",
    );
    rejects(
        &format!(
            "[checks.c]\ntcp = {{ port = 80 }}\ninterval = \"10ms\"\n[pools.a]\ncheck = \"c\"\n{NODES}\n"
        ),
        "\"10ms\"",
        "checks.c.interval",
        "interval must be 100ms..=3600s",
    );
    rejects(
        &format!("[pools.a]\ncheck = {{ none = true }}\nslow_start = \"2d\"\n{NODES}\n"),
        "\"2d\"",
        "pools.a.slow_start",
        "unknown unit",
    );
}

#[test]
fn rejects_timeout_not_below_interval() {
    rejects(
        &format!(
            "[checks.c]\ntcp = {{ port = 80 }}\ninterval = \"1s\"\ntimeout = \"1s\"\n[pools.a]\ncheck = \"c\"\n{NODES}\n"
        ),
        "\"1s\"#1",
        "checks.c.timeout",
        "must be shorter than the interval 1s",
    );
    // Inline checks name their path under the pool.
    rejects(
        &format!(
            "[pools.a]\ncheck = {{ tcp = {{ port = 80 }}, interval = \"200ms\", timeout = \"300ms\" }}\n{NODES}\n"
        ),
        "\"300ms\"",
        "pools.a.check.timeout",
        "shorter than the interval",
    );
}

#[test]
fn an_interval_shorter_than_the_default_timeout_gets_a_fitting_timeout() {
    let pools = ok(&format!(
        "[pools.a]\ncheck = {{ tcp = {{ port = 80 }}, interval = \"200ms\" }}\n{NODES}\n"
    ));
    assert!(pools[0].check.timeout < pools[0].check.interval);
}

#[test]
fn rejects_weight_zero_and_out_of_range_numbers() {
    rejects(
        "[pools.a]\ncheck = { none = true }\nnodes = [{ addr = \"192.0.2.1\", weight = 0 }]\n",
        "0 }",
        "pools.a.nodes[0].weight",
        "maint = true",
    );
    rejects(
        "[pools.a]\ncheck = { none = true }\nnodes = [{ addr = \"192.0.2.1\", tier = 0 }]\n",
        "0 }",
        "pools.a.nodes[0].tier",
        "1..=255",
    );
    rejects(
        &format!("[pools.a]\ncheck = {{ none = true }}\nttl = 301\n{NODES}\n"),
        "301",
        "pools.a.ttl",
        "0..=300",
    );
    rejects(
        &format!("[pools.a]\ncheck = {{ none = true }}\nttl = 10\ndegraded_ttl = 11\n{NODES}\n"),
        "11",
        "pools.a.degraded_ttl",
        "0..=10",
    );
    rejects(
        &format!("[pools.a]\ncheck = {{ none = true }}\nmax_answers = 9\n{NODES}\n"),
        "9",
        "pools.a.max_answers",
        "1..=8",
    );
    rejects(
        &format!(
            "[checks.c]\ntcp = {{ port = 80 }}\nfall = 0\n[pools.a]\ncheck = \"c\"\n{NODES}\n"
        ),
        "0\n",
        "checks.c.fall",
        "1..=100",
    );
    rejects(
        &format!("[pools.a]\ncheck = {{ none = true }}\nmin_healthy = 1.5\n{NODES}\n"),
        "1.5",
        "pools.a.min_healthy",
        "fraction in (0, 1]",
    );
}

#[test]
fn rejects_check_without_or_with_two_kinds() {
    rejects(
        &format!("[checks.c]\ninterval = \"1s\"\n[pools.a]\ncheck = \"c\"\n{NODES}\n"),
        "c]",
        "checks.c",
        "exactly one of http, https, tcp or none",
    );
    rejects(
        &format!(
            "[checks.c]\ntcp = {{ port = 80 }}\nhttp = {{ port = 80 }}\n[pools.a]\ncheck = \"c\"\n{NODES}\n"
        ),
        "{ port = 80 }#1",
        "checks.c",
        "exactly one kind",
    );
}

#[test]
fn rejects_bad_http_settings() {
    let case = |http: &str| format!("[checks.c]\n{http}\n[pools.a]\ncheck = \"c\"\n{NODES}\n");
    rejects(
        &case("http = { expect = [\"299-200\"] }"),
        "\"299-200\"",
        "checks.c.http.expect[0]",
        "backwards",
    );
    rejects(
        &case("http = { expect = [200, 700] }"),
        "700",
        "checks.c.http.expect[1]",
        "100..=599",
    );
    rejects(
        &case("http = { expect = [\"2xx\"] }"),
        "\"2xx\"",
        "checks.c.http.expect[0]",
        "bad status range",
    );
    rejects(
        &case("http = { path = \"health\" }"),
        "\"health\"",
        "checks.c.http.path",
        "must start with /",
    );
    rejects(
        &case("http = { method = \"get\" }"),
        "\"get\"",
        "checks.c.http.method",
        "upper-case",
    );
    rejects(
        &case("http = { sni = \"a.example\" }"),
        "\"a.example\"",
        "checks.c.http.sni",
        "https checks only",
    );
    rejects(
        &case("http = { verify_tls = false }"),
        "false",
        "checks.c.http.verify_tls",
        "https checks only",
    );
    rejects(
        &case("http = { headers = { Host = \"x\" } }"),
        "Host",
        "checks.c.http.headers.Host",
        "set by the check itself",
    );
    rejects(
        &case("http = { method = \"HEAD\", body = \"ok\" }"),
        "\"ok\"",
        "checks.c.http.body",
        "HEAD",
    );
    rejects(
        &case("http = { weight_header = \"X-W\", weight_body = true }"),
        "true",
        "checks.c.http.weight_body",
        "not both",
    );
    rejects(
        &case("https = { host = \"bad host\" }"),
        "\"bad host\"",
        "checks.c.https.host",
        "not a host name",
    );
}

#[test]
fn rejects_unknown_policy_and_all_down() {
    rejects(
        &format!("[pools.a]\ncheck = {{ none = true }}\npolicy = \"random\"\n{NODES}\n"),
        "\"random\"",
        "pools.a.policy",
        "unknown policy",
    );
    rejects(
        &format!("[pools.a]\ncheck = {{ none = true }}\nall_down = \"nothing\"\n{NODES}\n"),
        "\"nothing\"",
        "pools.a.all_down",
        "serve-all, last-healthy, empty or servfail",
    );
}

#[test]
fn rejects_names_outside_the_zone_or_duplicated() {
    rejects(
        &format!("[pools.\"web.example.org.\"]\ncheck = {{ none = true }}\n{NODES}\n"),
        "\"web.example.org.\"",
        "pools.\"web.example.org.\"",
        "outside the zone example.com.",
    );
    let text = format!(
        "[pools.web]\ncheck = {{ none = true }}\n{NODES}\n[pools.\"web.example.com.\"]\ncheck = {{ none = true }}\n{NODES}\n"
    );
    let (pools, errors) = run(&text);
    assert_eq!(pools.len(), 1);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].reason.contains("already defined"),
        "{}",
        errors[0]
    );
}

#[test]
fn rejects_node_check_overrides_that_cannot_apply() {
    rejects(
        "[pools.a]\ncheck = { none = true }\nnodes = [{ addr = \"192.0.2.1\", check_port = 81 }]\n",
        "81",
        "pools.a.nodes[0].check_port",
        "does not connect",
    );
    rejects(
        "[pools.a]\ncheck = { tcp = { port = 1 } }\nnodes = [{ addr = \"192.0.2.1\", check_host = \"x.example\" }]\n",
        "\"x.example\"",
        "pools.a.nodes[0].check_host",
        "http and https checks only",
    );
}

#[test]
fn unknown_keys_are_parse_errors() {
    // deny_unknown_fields: a typo never passes silently.
    let text = format!("[pools.a]\ncheck = {{ none = true }}\npolicyy = \"weighted\"\n{NODES}\n");
    assert!(toml::from_str::<Zone>(&text).is_err());
    let text =
        "[pools.a]\ncheck = { none = true }\nnodes = [{ addr = \"192.0.2.1\", wieght = 2 }]\n";
    assert!(toml::from_str::<Zone>(text).is_err());
    let text =
        format!("[checks.c]\nhttp = {{ paht = \"/\" }}\n[pools.a]\ncheck = \"c\"\n{NODES}\n");
    assert!(toml::from_str::<Zone>(&text).is_err());
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let text = "[pools.a]\ncheck = { none = true }\nttl = 999\npolicy = \"x\"\nnodes = [\"1.2.3\", \"192.0.2.1\", \"192.0.2.1\"]\n";
    let (pools, errors) = run(text);
    assert!(pools.is_empty());
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "pools.a.ttl",
            "pools.a.policy",
            "pools.a.nodes[0]",
            "pools.a.nodes[2]"
        ]
    );
}
