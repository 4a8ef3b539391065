//! Roundel in-process: `roundel::server::serve` on its own thread and tokio
//! runtime, bound to 127.0.0.1 on a free port, stopped on Drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roundel::server::{Listeners, ServeOptions};

#[path = "../in_process/mod.rs"]
mod in_process;
use in_process::InProcess;

use super::client::{self, Q, Transport};
use super::wire::{rcode, ty};

pub struct TestServer {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    server: InProcess,
}

/// Always starts Roundel (the switch in mod.rs chose this file).
pub fn start(zones_dir: &Path) -> Option<TestServer> {
    Some(TestServer::start(zones_dir))
}

/// The origin of the first `*.toml` zone in `dir` (to know what to ask for).
fn first_origin(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let f = files
        .first()
        .unwrap_or_else(|| panic!("no *.toml zone in {}", dir.display()));
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
    t["origin"].as_str().expect("origin").to_string()
}

impl TestServer {
    /// Binds 127.0.0.1:0 (UDP and TCP on the same port), serves `zones_dir`,
    /// and waits at most 10 s until the SOA of a zone is answered over both.
    pub fn start(zones_dir: impl AsRef<Path>) -> TestServer {
        let zones_dir = zones_dir.as_ref().to_path_buf();
        let origin = first_origin(&zones_dir);
        let listeners =
            Listeners::bind(&["127.0.0.1:0".parse().unwrap()]).expect("bind 127.0.0.1:0");
        let udp = listeners.udp_addrs()[0];
        let tcp = listeners.tcp_addrs()[0];
        let mut opts = ServeOptions::new(zones_dir);
        // The reference server answers no cookies, so neither does Roundel here (each
        // server cookie is also time-dependent); tests/cookies_dig.rs covers them.
        opts.cookies = roundel::dns::rrl_config::CookieConfig {
            enabled: false,
            secret_file: None,
        };
        // Rate limiting on, with the test client's address exempt (the operator's knob
        // for a known heavy client): these tests send thousands of identical queries a
        // second from 127.0.0.1 to measure distributions. tests/rrl_flood.rs floods
        // from other 127.0.0.x addresses.
        opts.rrl.exempt = vec![roundel::dns::rrl_config::Prefix::parse("127.0.0.1").unwrap()];
        let mut s = TestServer {
            udp,
            tcp,
            server: InProcess::spawn("roundel-test-server", opts, listeners),
        };
        s.wait_ready(&origin);
        s
    }

    fn wait_ready(&mut self, origin: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..200 {
            if let Some(why) = self.server.exited() {
                panic!("roundel::server::serve ended during start-up: {why}");
            }
            let ok = |addr, t| {
                let o = client::exchange(addr, t, &Q::new(origin, ty::SOA));
                matches!(o.message(), Some(m) if m.rcode() == rcode::NOERROR && m.answer.len() == 1)
            };
            if ok(self.udp, Transport::Udp) && ok(self.tcp, Transport::Tcp) {
                return;
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "Roundel did not answer {origin} SOA on {} / {} within 10 s",
            self.udp, self.tcp
        );
    }
}
