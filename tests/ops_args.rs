//! The `roundel` binary's argument checks: bad values are refused with a message naming
//! the option, before anything is bound.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_roundel");

#[test]
fn zero_udp_or_tcp_threads_is_refused_not_raised() {
    for flag in ["--udp-threads", "--tcp-threads"] {
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", flag, "0"])
            // Where no `zones` directory is: were 0 accepted, the server would stop there.
            .current_dir(env!("CARGO_TARGET_TMPDIR"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: stderr: {err}");
        assert!(
            err.contains(flag) && err.contains("at least 1"),
            "{flag}: stderr: {err}"
        );
    }
}
