//! Caps that keep a valid configuration from exhausting the server: the number of health
//! probes (checked by `roundel check` and at load, with file, line and key) and the number
//! of checks in flight at once (measured at a real backend that never answers).

mod ops_support;

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_support::daemon::{Daemon, run};
use ops_support::*;

/// A zone with `pools` pools of 64 nodes each, every node its own probe target.
fn many_pools(origin: &str, pools: usize) -> String {
    let mut z = zone(origin, "1", "[checks.t]\ntcp = { port = 9 }\n");
    for p in 0..pools {
        let nodes: Vec<String> = (0..64)
            .map(|n| format!("\"10.{}.{}.{}\"", p / 200, p % 200, n + 1))
            .collect();
        z.push_str(&format!(
            "[pools.p{p:03}]\ncheck = \"t\"\nnodes = [{}]\n",
            nodes.join(", ")
        ));
    }
    z
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l == needle)
        .expect("needle in text")
        + 1
}

#[test]
fn zone_sets_over_the_probe_cap_are_rejected_with_file_line_and_key() {
    let dir = TempDir::new("probecap");
    // 64 pools x 64 targets = 4096 probes: exactly the default cap.
    let at_cap = many_pools("cap.test.", 64);
    std::fs::write(dir.join("big.toml"), &at_cap).unwrap();
    let (code, out, err) = run(&["check", "big.toml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");

    // One pool more: the 65th pool (p064) crosses the cap.
    let over = many_pools("cap.test.", 65);
    std::fs::write(dir.join("big.toml"), &over).unwrap();
    let (code, out, _) = run(&["check", "big.toml"], dir.path());
    assert_eq!(code, 1, "{out}");
    let line = line_of(&over, "[pools.p064]");
    let want = format!(
        "big.toml:{line}:8: pools.p064: this pool brings the health probes (distinct check target and check) over the limit of 4096: 4160 so far"
    );
    assert!(out.starts_with(&want), "want {want}\ngot  {out}");

    // The cap from the server configuration, for check and for serve.
    let small = many_pools("small.test.", 2);
    std::fs::remove_file(dir.join("big.toml")).unwrap();
    std::fs::write(dir.join("small.toml"), &small).unwrap();
    let conf_dir = TempDir::new("probecap-conf");
    std::fs::write(
        conf_dir.join("roundel.toml"),
        "[health]\nmax_probes = 100\n",
    )
    .unwrap();
    let conf = conf_dir.join("roundel.toml");
    let (code, out, _) = run(
        &["check", "--config", conf.to_str().unwrap(), "small.toml"],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}");
    let line = line_of(&small, "[pools.p001]");
    assert!(
        out.starts_with(&format!(
            "small.toml:{line}:8: pools.p001: this pool brings the health probes"
        )),
        "{out}"
    );
    let (code, out, _) = run(&["check", "small.toml"], dir.path());
    assert_eq!(code, 0, "{out}");

    let zones = dir.path().to_str().unwrap();
    let config = conf_dir.join("roundel.toml");
    let log = match Daemon::start(&[
        "--no-admin",
        "--zones",
        zones,
        "--config",
        config.to_str().unwrap(),
    ]) {
        Ok(_) => panic!("served a zone set over the probe cap"),
        Err(log) => log,
    };
    assert!(
        log.contains(&format!(
            "small.toml:{line}:8: pools.p001: this pool brings the health probes"
        )),
        "{log}"
    );
}

/// A backend that accepts connections and never answers; each is held until the client
/// closes it, and its open and close times are recorded.
struct Hanging {
    port: u16,
    conns: Arc<Mutex<Vec<(Instant, Option<Instant>)>>>,
}

/// Closing a timed-out check's socket lags its end by a few milliseconds (the HTTP
/// client's connection task): overlaps shorter than this are not concurrency.
const CLOSE_SLACK: Duration = Duration::from_millis(100);

impl Hanging {
    fn total(&self) -> usize {
        self.conns.lock().unwrap().len()
    }

    /// Most connections open together for longer than [`CLOSE_SLACK`].
    fn most_at_once(&self) -> usize {
        let now = Instant::now();
        let v: Vec<(Instant, Instant)> = self
            .conns
            .lock()
            .unwrap()
            .iter()
            .map(|&(a, b)| (a, b.unwrap_or(now)))
            .collect();
        v.iter()
            .map(|&(at, _)| {
                v.iter()
                    .filter(|&&(a, b)| a <= at && at + CLOSE_SLACK < b)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }
}

fn hanging_backend() -> Hanging {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let conns = Arc::new(Mutex::new(Vec::new()));
    let h = Hanging {
        port,
        conns: conns.clone(),
    };
    std::thread::spawn(move || {
        for s in l.incoming().take(100_000) {
            let Ok(mut s) = s else { continue };
            let i = {
                let mut c = conns.lock().unwrap();
                c.push((Instant::now(), None));
                c.len() - 1
            };
            let conns = conns.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = [0u8; 1024];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                conns.lock().unwrap()[i].1 = Some(Instant::now());
            });
        }
    });
    h
}

#[test]
fn checks_in_flight_are_capped() {
    let backend = hanging_backend();
    let dir = TempDir::new("inflight");
    // 40 probes (distinct Host headers) of one hanging backend, 1 s timeout.
    let nodes: Vec<String> = (1..=40)
        .map(|i| {
            format!(
                "{{ addr = \"192.0.2.{i}\", check_addr = \"127.0.0.1\", check_host = \"h{i}.test\" }}"
            )
        })
        .collect();
    let body = format!(
        "[pools.web]\ncheck = {{ http = {{ port = {} }}, interval = \"2s\", timeout = \"1s\" }}\nnodes = [{}]\n",
        backend.port,
        nodes.join(", ")
    );
    write_atomic(&dir.join("w.toml"), &zone("inflight.test.", "1", &body));
    let conf_dir = TempDir::new("inflight-conf");
    let config = conf_dir.join("roundel.toml");
    std::fs::write(&config, "[health]\nmax_probes_in_flight = 4\n").unwrap();
    let d = Daemon::start(&[
        "--no-admin",
        "--zones",
        dir.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ])
    .unwrap();
    // Every probe has connected at least once (40 / 4 x 1 s = 10 s), bounded.
    let start = Instant::now();
    while backend.total() < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {} checks within 30 s",
            backend.total()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let most = backend.most_at_once();
    assert!(
        (2..=4).contains(&most),
        "{most} checks were open at once (cap 4)"
    );
    drop(d);
}
