//! A zone file written in place in two steps, the first of them valid TOML on its own, is
//! never served half-written: the watcher waits until the files have stopped changing.

mod ops_support;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use ops_support::daemon::Daemon;
use ops_support::*;

/// Pause between the two writes: longer than the watcher's 200 ms debounce (so a reader
/// that only debounces reads the first half), shorter than the settle window.
const PAUSE: Duration = Duration::from_millis(300);
const ROUNDS: u32 = 5;

fn halves(round: u32) -> (String, String) {
    let first = zone(
        "half.test.",
        "\"auto\"",
        &format!("[names.www]\nA = \"192.0.2.{round}\"\n"),
    );
    let second = "[names.tail]\nA = \"192.0.2.200\"\n".to_owned();
    (first, second)
}

#[test]
fn a_file_written_in_two_steps_is_never_served_half_written() {
    let dir = TempDir::new("settle");
    let file = dir.join("half.toml");
    let (a, b) = halves(100);
    write_atomic(&file, &format!("{a}{b}"));
    let d = Daemon::start(&["--no-admin", "--zones", dir.path().to_str().unwrap()]).unwrap();
    let dns = d.dns;
    assert_eq!(addrs(&query(dns, "tail.half.test.", A)), ["192.0.2.200"]);

    // Query the tail all along: it is in every complete version of the file.
    let stop = Arc::new(AtomicBool::new(false));
    let (missing, asked) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let q = {
        let (stop, missing, asked) = (stop.clone(), missing.clone(), asked.clone());
        std::thread::spawn(move || {
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let m = query(dns, "tail.half.test.", A);
                asked.fetch_add(1, Ordering::Relaxed);
                if m.metadata.response_code != ResponseCode::NoError || addrs(&m).is_empty() {
                    missing.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    for round in 1..=ROUNDS {
        let (first, second) = halves(round);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file)
            .unwrap();
        f.write_all(first.as_bytes()).unwrap();
        f.flush().unwrap();
        std::thread::sleep(PAUSE);
        f.write_all(second.as_bytes()).unwrap();
        drop(f);
        // The complete version is served (bounded wait), so reloads do happen.
        let want = format!("192.0.2.{round}");
        let start = Instant::now();
        loop {
            if addrs(&query(dns, "www.half.test.", A)) == [want.clone()] {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "round {round}: {want} not served within 15 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    stop.store(true, Ordering::Relaxed);
    q.join().unwrap();
    let (missing, asked) = (
        missing.load(Ordering::Relaxed),
        asked.load(Ordering::Relaxed),
    );
    assert!(asked > 100, "only {asked} queries");
    assert_eq!(
        missing, 0,
        "{missing} of {asked} answers reflected a half-written file"
    );
}
