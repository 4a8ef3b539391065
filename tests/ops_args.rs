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

/// The subcommands' arguments are built only for the one invoked (clap `defer`): the
/// top-level help still lists every subcommand with its description, each subcommand's own
/// help still lists its arguments, and `ctl`'s nested commands still parse.
#[test]
fn deferred_subcommands_keep_their_help_and_arguments() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    // `args` succeeds and prints every one of `wanted`.
    let prints_all = |args: &[&str], wanted: &[&str]| {
        let (code, text) = run(args);
        assert_eq!(code, Some(0), "{args:?}: {text}");
        for w in wanted {
            assert!(text.contains(w), "{args:?}: missing {w:?} in:\n{text}");
        }
    };
    prints_all(
        &["--help"],
        &[
            "serve   Serve the zones of a directory over UDP and TCP",
            "check   Validate zone files without serving them",
            "import  Convert an RFC 1035 master file",
            "export  Print a Roundel zone file as an RFC 1035 master file",
            "ctl     Talk to a running server's admin API",
        ],
    );
    prints_all(
        &["serve", "--help"],
        &[
            "--listen <ADDR:PORT>",
            "--zones <DIR>",
            "--udp-threads",
            "--no-admin",
        ],
    );
    prints_all(
        &["ctl", "--help"],
        &["status", "drain", "maint", "weight", "explain", "query-log"],
    );
    // A deferred subcommand still refuses what it does not know, naming it.
    let (code, err) = run(&["import", "--no-such-flag", "x.zone"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--no-such-flag"), "{err}");
    let (code, err) = run(&["ctl", "weight", "pool.example."]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("<NODE>") && err.contains("<WEIGHT>"), "{err}");
}
