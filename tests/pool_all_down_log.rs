//! A pool going all down is logged at WARN by a server without an admin listener (the
//! binary with `--no-admin`), and its recovery at INFO; the node going down at WARN too.
//! The only backend is a real TCP listener on 127.0.0.x that the test closes and reopens.

mod ops_support;

use std::net::TcpListener;
use std::time::Duration;

use ops_support::daemon::Daemon;
use ops_support::*;

#[test]
fn pool_all_down_is_logged_without_the_admin_listener() {
    // An address of our own on loopback, so no other test's backend answers the check.
    let backend = TcpListener::bind("127.0.0.71:0").expect("bind a backend on 127.0.0.71");
    let port = backend.local_addr().unwrap().port();
    let zones = TempDir::new("all-down-log");
    write_atomic(
        &zones.join("warn.test.toml"),
        &zone(
            "warn.test.",
            "1",
            &format!(
                r#"[checks.tcp]
tcp = {{ port = {port} }}
interval = "200ms"
timeout = "100ms"
fall = 1
rise = 1
[pools.www]
check = "tcp"
nodes = ["127.0.0.71"]
"#
            ),
        ),
    );
    let d = Daemon::quiet(zones.path());
    assert_eq!(addrs(&query(d.dns, "www.warn.test.", A)), ["127.0.0.71"]);
    // The first result (at once on loopback) already names the pool node it is for.
    let first = d
        .log()
        .into_iter()
        .find(|l| l.contains("node health changed"))
        .expect("the first result is logged before the server answers");
    assert!(
        first.contains("pools=www.warn.test./127.0.0.71"),
        "the first result does not name its pool: {first}"
    );
    assert!(
        !d.log().iter().any(|l| l.contains("pool all down")),
        "all down with a healthy node: {:#?}",
        d.log()
    );

    drop(backend);
    let warn = d
        .wait_log(Duration::from_secs(10), |l| {
            l.contains("pool all down").then(|| l.to_owned())
        })
        .unwrap_or_else(|| panic!("no all-down line within 10 s: {:#?}", d.log()));
    assert!(warn.contains("WARN"), "not a warning: {warn}");
    assert!(
        warn.contains("www.warn.test"),
        "the pool is not named: {warn}"
    );
    assert!(
        warn.contains("serve-all"),
        "the all-down mode is not named: {warn}"
    );
    let node_down = d
        .log()
        .into_iter()
        .find(|l| l.contains("node health changed") && l.contains("to=down"));
    assert!(
        node_down.as_ref().is_some_and(|l| l.contains("WARN")),
        "the node going down is not a warning: {node_down:?}"
    );
    // serve-all: the dead address is still handed out, which is why the log says so.
    assert_eq!(addrs(&query(d.dns, "www.warn.test.", A)), ["127.0.0.71"]);

    let _back = TcpListener::bind(("127.0.0.71", port)).expect("rebind the backend");
    let again = d
        .wait_log(Duration::from_secs(10), |l| {
            l.contains("pool answering again").then(|| l.to_owned())
        })
        .unwrap_or_else(|| panic!("no recovery line within 10 s: {:#?}", d.log()));
    assert!(again.contains("INFO"), "recovery not at INFO: {again}");
    assert_eq!(
        d.log()
            .iter()
            .filter(|l| l.contains("pool all down"))
            .count(),
        1,
        "one warning per change: {:#?}",
        d.log()
    );
}
