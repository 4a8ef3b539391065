//! Drain, maint and ready by address across every pool that lists the address, through
//! the API and `roundel ctl`, against a running server with real HTTP backends on
//! 127.0.0.141-143; the per-pool form still changes one pool only.

mod ops_support;
mod support_backends;

use std::process::Command;
use std::time::Duration;

use ops_support::*;
use serde_json::Value;
use support_backends::{Backend, Mode};

const TOKEN: &str = "machine-token";

fn node_spec(b: &Backend, label: &str) -> String {
    format!(
        "{{ addr = \"{}\", label = \"{label}\", check_port = {} }}",
        b.addr.ip(),
        b.port()
    )
}

fn pool(name: &str, nodes: &[String]) -> String {
    format!(
        "[pools.{name}]\ncheck = {{ http = {{ path = \"/health\" }}, interval = \"200ms\", timeout = \"100ms\", fall = 1, rise = 1 }}\nttl = 2\ndegraded_ttl = 1\nnodes = [{}]\n",
        nodes.join(", ")
    )
}

fn a(s: &Server, name: &str) -> Vec<String> {
    addrs(&query(s.dns, name, A))
}

/// `roundel ctl` with the token in a file, as the systemd unit's ExecReload passes it.
fn ctl(s: &Server, args: &[&str]) -> (bool, String, String) {
    let dir = TempDir::new("machine-token");
    let token_file = dir.join("admin.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_roundel"))
        .arg("ctl")
        .arg("--server")
        .arg(s.url(""))
        .arg("--token-file")
        .arg(&token_file)
        .args(args)
        .output()
        .expect("run roundel ctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn states(v: &Value) -> Vec<(String, String)> {
    v["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pool"].as_str().unwrap().to_string(),
                p["node"]["admin"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_by_address_covers_every_pool() {
    let shared = Backend::http("127.0.0.141", Mode::ok()).await;
    let b2 = Backend::http("127.0.0.142", Mode::ok()).await;
    let b3 = Backend::http("127.0.0.143", Mode::ok()).await;
    let zones = TempDir::new("machine-zones");
    write_atomic(
        &zones.join("ops.test.toml"),
        &zone(
            "ops.test.",
            "\"auto\"",
            &format!(
                "{}{}",
                pool("web", &[node_spec(&shared, "m1"), node_spec(&b2, "m2")]),
                pool("api", &[node_spec(&b3, "m3"), node_spec(&shared, "shared")])
            ),
        ),
    );
    write_atomic(
        &zones.join("other.test.toml"),
        &zone(
            "other.test.",
            "\"auto\"",
            &pool(
                "mail",
                &[node_spec(&shared, "mx-a"), node_spec(&b2, "mx-b")],
            ),
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
    eventually(Duration::from_secs(5), "every node up", || async {
        a(&s, "web.ops.test.").len() == 2
            && a(&s, "api.ops.test.").len() == 2
            && a(&s, "mail.other.test.").len() == 2
    })
    .await;
    // Answers are cached for up to the pool TTL from now on.
    let served_at = std::time::SystemTime::now();

    // The address in every pool, by GET.
    let v = get(&c, &s.url("/api/v1/nodes/127.0.0.141")).await;
    let mut pools: Vec<String> = states(&v).into_iter().map(|(p, _)| p).collect();
    pools.sort();
    assert_eq!(
        pools,
        ["api.ops.test.", "mail.other.test.", "web.ops.test."],
        "{v}"
    );

    // Token, address syntax and unknown addresses.
    let (code, _) = call(
        &c,
        reqwest::Method::POST,
        &s.url("/api/v1/nodes/127.0.0.141/drain"),
        None,
        None,
    )
    .await;
    assert_eq!(code, 401);
    let (code, body) = call(
        &c,
        reqwest::Method::POST,
        &s.url("/api/v1/nodes/web1/drain"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = call(
        &c,
        reqwest::Method::POST,
        &s.url("/api/v1/nodes/127.0.0.149/drain"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(code, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no pool lists"),
        "{body}"
    );

    // `roundel ctl drain ADDR`: drained in all three pools, one safe-to-stop time.
    let (ok, out, err) = ctl(&s, &["drain", "127.0.0.141"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("127.0.0.141 drained in"), "{out}");
    for p in ["web.ops.test.", "api.ops.test.", "mail.other.test."] {
        assert!(out.contains(p), "{p} missing from: {out}");
    }
    assert_eq!(a(&s, "web.ops.test."), ["127.0.0.142"]);
    assert_eq!(a(&s, "api.ops.test."), ["127.0.0.143"]);
    assert_eq!(a(&s, "mail.other.test."), ["127.0.0.142"]);
    let v = get(&c, &s.url("/api/v1/nodes/127.0.0.141")).await;
    assert!(states(&v).iter().all(|(_, st)| st == "drain"), "{v}");
    let latest = v["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["node"]["cached_until"].as_str().unwrap().to_string())
        .max()
        .unwrap();
    assert_eq!(
        v["safe_to_stop_at"], latest,
        "the latest of every pool: {v}"
    );
    assert!(
        latest.as_str() >= crate_rfc3339(served_at).as_str(),
        "{latest} is before the last answer"
    );
    // Safe to stop once every pool's TTL (2 s) has passed since the last answer naming it.
    eventually(
        Duration::from_secs(8),
        "safe to stop everywhere",
        || async { get(&c, &s.url("/api/v1/nodes/127.0.0.141")).await["safe_to_stop"] == true },
    )
    .await;

    // Ready by address: back in every pool.
    let (ok, out, err) = ctl(&s, &["ready", "127.0.0.141"]);
    assert!(ok, "{out}{err}");
    eventually(Duration::from_secs(5), "back in every pool", || async {
        a(&s, "web.ops.test.").len() == 2
            && a(&s, "api.ops.test.").len() == 2
            && a(&s, "mail.other.test.").len() == 2
    })
    .await;

    // Maint by address through the API.
    let (code, body) = call(
        &c,
        reqwest::Method::POST,
        &s.url("/api/v1/nodes/127.0.0.141/maint"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(states(&body).iter().all(|(_, st)| st == "maint"), "{body}");
    assert!(!a(&s, "mail.other.test.").contains(&"127.0.0.141".to_string()));
    let (ok, _, err) = ctl(&s, &["ready", "127.0.0.141"]);
    assert!(ok, "{err}");

    // The per-pool form still changes one pool only.
    let (ok, out, err) = ctl(&s, &["drain", "web.ops.test", "m1"]);
    assert!(ok, "{out}{err}");
    assert_eq!(a(&s, "web.ops.test."), ["127.0.0.142"]);
    assert_eq!(a(&s, "api.ops.test.").len(), 2);
    let v = get(&c, &s.url("/api/v1/nodes/127.0.0.141")).await;
    let st = states(&v);
    assert!(
        st.contains(&("web.ops.test.".into(), "drain".into())),
        "{v}"
    );
    assert!(
        st.contains(&("api.ops.test.".into(), "ready".into())),
        "{v}"
    );
    assert_eq!(v["safe_to_stop"], false, "still served by two pools");
}

/// RFC 3339 in UTC with milliseconds, as the API writes it (for ordering only).
fn crate_rfc3339(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
