//! SIGHUP reloads the zones, tested with the file watcher off (`--no-watch`) so that
//! nothing else can reload them. The binary binds port 0 and the test reads the address
//! it reports in its log, so no port is chosen by bind-release-rebind.

mod ops_support;

use std::process::Command;
use std::time::Duration;

use ops_support::daemon::Daemon;
use ops_support::*;

#[test]
fn sighup_reloads_with_the_watcher_off() {
    let zones = TempDir::new("sighup");
    let file = zones.join("hup.test.toml");
    write_atomic(
        &file,
        &zone("hup.test.", "1", "[names.www]\nA = \"192.0.2.1\""),
    );
    let d = Daemon::quiet(zones.path());
    assert_eq!(serial(&query(d.dns, "hup.test.", SOA)), 1);

    write_atomic(
        &file,
        &zone("hup.test.", "2", "[names.www]\nA = \"192.0.2.2\""),
    );
    let ok = Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    d.wait_log(Duration::from_secs(10), |l| {
        (l.contains("zones loaded") && l.contains("trigger=\"signal\"")
            || l.contains("trigger=signal"))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("no reload by signal logged: {:#?}", d.log()));
    assert_eq!(serial(&query(d.dns, "hup.test.", SOA)), 2);
    assert_eq!(addrs(&query(d.dns, "www.hup.test.", A)), ["192.0.2.2"]);
    let lines = d.log();
    assert!(
        !lines.iter().any(|l| l.contains("zone files changed")),
        "the watcher reloaded: {lines:#?}"
    );
}
