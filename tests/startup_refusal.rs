//! A server started on invalid zones refuses to start, lists every problem (an unknown key
//! hides none of the others, and comes with the nearest valid key), and does not claim to
//! be "still serving the previous zones", since there are none.

mod ops_support;

use std::process::Command;

use ops_support::TempDir;

#[test]
fn invalid_zones_at_start_are_a_refusal_with_every_problem() {
    let zones = TempDir::new("refusal-zones");
    std::fs::write(
        zones.join("bad.test.toml"),
        "origin = \"bad.test.\"\ntll = 5\n[soa]\nmname = \"ns1\"\nrname = \"h\"\n\
         [names.\"@\"]\nNS = \"ns1\"\n[names.ns1]\nA = \"192.0.2.300\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_roundel"))
        .args(["serve", "--zones"])
        .arg(zones.path())
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run roundel serve");
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("bad.test.toml:2:1: tll: unknown key `tll`; did you mean `ttl`?"),
        "{err}"
    );
    assert!(
        err.contains("bad.test.toml:9:5: names.ns1.A: not an IPv4 address"),
        "{err}"
    );
    assert!(err.contains("not started"), "{err}");
    assert!(!err.contains("still serving"), "{err}");
}
