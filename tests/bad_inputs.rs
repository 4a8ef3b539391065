//! Bad inputs through the real binary: records over the wire limit, unusable entries in
//! the zones directory, a damaged admin state file. Each is an error naming the file
//! (and line and key where there is one), never a panic, and the server keeps serving
//! its last good data.

mod ops_support;
mod zone_text;

use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use ops_support::daemon::{Daemon, run};
use ops_support::*;
use zone_text::HEAD;

fn head(origin: &str) -> String {
    HEAD.replace("example.test.", origin)
}

#[test]
fn records_over_the_wire_limit_are_errors_with_file_line_and_key() {
    let dir = TempDir::new("bigrec");
    let long = "x".repeat(70_000);
    std::fs::write(
        dir.join("txt.toml"),
        format!("{}[names.big]\nTXT = \"{long}\"\n", head("t.test.")),
    )
    .unwrap();
    std::fs::write(
        dir.join("caa.toml"),
        format!(
            "{}[names.big]\nCAA = \"0 issue \\\"ca.test; policy={long}\\\"\"\n",
            head("c.test.")
        ),
    )
    .unwrap();
    // 300 records of 251 bytes: each fits, the set does not fit in one message.
    let items: Vec<String> = (0..300)
        .map(|i| format!("\"{}-{i:03}\"", "y".repeat(246)))
        .collect();
    std::fs::write(
        dir.join("set.toml"),
        format!(
            "{}[names.big]\nTXT = [{}]\n",
            head("s.test."),
            items.join(",")
        ),
    )
    .unwrap();

    let (code, out, err) = run(&["check", "."], dir.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("./caa.toml:10:7: names.big.CAA: the record data is over 65535 bytes"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("./set.toml:10:7: names.big.TXT: the record set is ")
            && lines[1].contains("more than the 65535 bytes of a DNS message"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("./txt.toml:10:7: names.big.TXT: the record data is over 65535 bytes"),
        "{out}"
    );

    // Startup: the same errors, a clean exit, no panic.
    let zones = dir.path().to_str().unwrap();
    let e = match Daemon::start(&["--no-admin", "--zones", zones]) {
        Ok(_) => panic!("started with records over the limit"),
        Err(log) => log,
    };
    assert!(!e.contains("panicked"), "{e}");
    assert!(
        e.contains("txt.toml:10:7: names.big.TXT: the record data is over 65535 bytes"),
        "{e}"
    );
}

/// Polls `GET /api/v1/reload` until the last reload failed with an error on `file`.
async fn reload_failed_on(c: &reqwest::Client, d: &Daemon, file: &Path, want: &str) {
    let url = d.url("/api/v1/reload");
    let file = file.display().to_string();
    let mut last = serde_json::Value::Null;
    for _ in 0..250 {
        last = get(c, &url).await;
        let hit = last["last"]["errors"].as_array().is_some_and(|errs| {
            errs.iter().any(|e| {
                e["file"] == file.as_str() && e["reason"].as_str().is_some_and(|r| r.contains(want))
            })
        });
        if hit && last["last"]["ok"] == false {
            return;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!("no failed reload naming {file} ({want}) within 10 s: {last}");
}

fn answers(d: &Daemon, name: &str) -> Vec<String> {
    let m = query(d.dns, name, A);
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "{name}: {m:?}"
    );
    addrs(&m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_entries_in_the_zones_directory_are_errors_and_old_data_is_kept() {
    let dir = TempDir::new("zonesdir");
    let a = dir.join("a.toml");
    let b = dir.join("b.toml");
    write_atomic(
        &a,
        &format!("{}[names.www]\nA = \"192.0.2.10\"\n", head("a.test.")),
    );
    write_atomic(
        &b,
        &format!("{}[names.www]\nA = \"192.0.2.20\"\n", head("b.test.")),
    );
    let d = Daemon::start(&["--zones", dir.path().to_str().unwrap()]).unwrap();
    assert_eq!(answers(&d, "www.b.test."), ["192.0.2.20"]);
    let c = client();

    // b.toml replaced (atomically) by a link to a file that does not exist.
    let tmp = dir.join("b.link");
    std::os::unix::fs::symlink(dir.join("gone.toml"), &tmp).unwrap();
    std::fs::rename(&tmp, &b).unwrap();
    reload_failed_on(&c, &d, &b, "dangling symbolic link").await;
    assert_eq!(
        answers(&d, "www.b.test."),
        ["192.0.2.20"],
        "b.test. dropped"
    );
    let (code, out, _) = run(&["check", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("{}: dangling symbolic link", b.display())),
        "{out}"
    );

    // A link to itself.
    std::fs::remove_file(&b).unwrap();
    std::os::unix::fs::symlink(&b, &tmp).unwrap();
    std::fs::rename(&tmp, &b).unwrap();
    reload_failed_on(&c, &d, &b, "symbolic link loop").await;
    assert_eq!(answers(&d, "www.b.test."), ["192.0.2.20"]);

    // Entries that cannot be read as files: a FIFO and a directory. (Permission bits are
    // no test here: the tests may run as root, who reads everything.)
    std::fs::remove_file(&b).unwrap();
    let fifo = dir.join("c.toml");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    reload_failed_on(&c, &d, &fifo, "not a regular file").await;
    assert_eq!(answers(&d, "www.b.test."), ["192.0.2.20"]);
    std::fs::remove_file(&fifo).unwrap();
    let sub = dir.join("d.toml");
    std::fs::create_dir(&sub).unwrap();
    reload_failed_on(&c, &d, &sub, "is a directory").await;
    assert_eq!(answers(&d, "www.a.test."), ["192.0.2.10"]);
    let (code, out, _) = run(&["check", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("{}: is a directory", sub.display())),
        "{out}"
    );
}

fn state_dir_with(text: &str) -> TempDir {
    let d = TempDir::new("statefile");
    std::fs::write(d.join("admin-state.json"), text).unwrap();
    d
}

/// Starts with a damaged state file: the server must start, WARN, move the file aside and
/// serve the pool node it would have had in maintenance had the file been trusted.
fn damaged_state_file_case(text: &str, why: &str) {
    let zones = TempDir::new("statezones");
    write_atomic(
        &zones.join("s.toml"),
        &format!("{}[names.www]\nA = \"192.0.2.30\"\n", head("s.test.")),
    );
    let state = state_dir_with(text);
    let started = Instant::now();
    let d = Daemon::start(&[
        "--zones",
        zones.path().to_str().unwrap(),
        "--state-dir",
        state.path().to_str().unwrap(),
    ])
    .unwrap_or_else(|log| panic!("did not start with a {why} state file:\n{log}"));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(answers(&d, "www.s.test."), ["192.0.2.30"]);
    let log = d.log().join("\n");
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("damaged admin state file moved aside")
            && l.contains("admin-state.json.bad-")),
        "{why}: {log}"
    );
    assert!(!state.join("admin-state.json").exists(), "{why}: not moved");
    let aside: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("admin-state.json.bad-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{why}");
    assert_eq!(
        std::fs::read_to_string(aside[0].path()).unwrap(),
        text,
        "{why}: content kept"
    );
    let status = http_get_blocking(d.admin.unwrap(), "/api/v1/status").unwrap();
    assert_eq!(status.0, 200);
}

#[test]
fn truncated_state_file_is_moved_aside() {
    damaged_state_file_case(
        "{\"version\":1,\"nodes\":[{\"pool\":\"web.s.test.\",\"addr\":\"192.0.2.1\",\"sta",
        "truncated",
    );
}

#[test]
fn garbage_state_file_is_moved_aside() {
    damaged_state_file_case("\u{0}\u{7f}garbage\n\u{1b}[31m", "garbage");
}

#[test]
fn state_file_with_since_1e19_is_moved_aside() {
    damaged_state_file_case(
        r#"{"version":1,"nodes":[{"pool":"web.s.test.","addr":"192.0.2.1","state":"maint","since":1e19}]}"#,
        "since 1e19",
    );
}

#[test]
fn state_file_with_weight_out_of_range_is_moved_aside() {
    damaged_state_file_case(
        r#"{"version":1,"nodes":[{"pool":"web.s.test.","addr":"192.0.2.1","state":"ready","weight":4000000000,"since":1}]}"#,
        "weight 4e9",
    );
}

#[test]
fn state_file_with_a_bad_pool_name_is_moved_aside() {
    damaged_state_file_case(
        r#"{"version":1,"nodes":[{"pool":"..not a name..","addr":"192.0.2.1","state":"drain","since":1}]}"#,
        "pool name",
    );
}
