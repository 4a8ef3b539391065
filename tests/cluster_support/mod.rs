//! Helpers for the cluster tests: a real etcd on loopback ports with a temporary data
//! directory (killed by PID), HTTP backends on 127.0.0.x that count checks per source
//! address and can refuse one source, and Roundel instances in-process with cluster mode
//! on.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roundel::admin::Token;
use roundel::cluster::ClusterConfig;
use roundel::server::{Listeners, ServeOptions};
use serde_json::Value;

use crate::ops_support::in_process::InProcess;
use crate::ops_support::{TempDir, http_get_blocking};

/// The admin token of every test instance.
pub const TOKEN: &str = "cluster-test-token";

/// Polls `cond` every 20 ms until it holds or `bound` passes; returns the time it took.
pub fn wait_until(bound: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    for _ in 0..(bound.as_millis() / 20 + 2) {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() > bound {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A single-member etcd on 127.0.0.1 with its data in a temporary directory.
pub struct Etcd {
    pub url: String,
    dir: TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Etcd {
    /// Starts etcd and waits (at most 15 s) until it reports healthy.
    pub fn start() -> Etcd {
        let dir = TempDir::new("etcd");
        let (client_port, peer_port) = (free_port(), free_port());
        let mut e = Etcd {
            url: format!("http://127.0.0.1:{client_port}"),
            dir,
            client_port,
            peer_port,
            child: None,
        };
        e.spawn();
        e
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("etcd.log")).unwrap();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
            .args([
                "--name",
                "t",
                "--data-dir",
                self.dir.join("data").to_str().unwrap(),
                "--listen-client-urls",
                &self.url,
                "--advertise-client-urls",
                &self.url,
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
                "--initial-cluster",
                &format!("t={peer}"),
                // Fast election on a loaded test machine; leases count from election.
                "--heartbeat-interval",
                "100",
                "--election-timeout",
                "1000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("etcd must be installed (Debian: etcd-server)");
        self.child = Some(child);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.client_port).parse().unwrap();
        let ok = wait_until(Duration::from_secs(15), || {
            http_get_blocking(addr, "/health").is_some_and(|(s, b)| s == 200 && b.contains("true"))
        });
        assert!(
            ok.is_some(),
            "etcd did not become healthy within 15 s: {}",
            self.log()
        );
    }

    /// The etcd log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }

    /// Kills etcd by PID (SIGKILL), keeping its data.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Default)]
struct BackendState {
    hits: Vec<(Instant, IpAddr)>,
    refuse: HashSet<IpAddr>,
}

/// An HTTP backend on `ip:port` answering 200 to every request (one per connection),
/// counting requests per source address; it drops connections from refused sources
/// without an answer.
pub struct Backend {
    pub addr: SocketAddr,
    state: Arc<Mutex<BackendState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    /// Starts on `ip` and a free port (or `port` when not 0).
    pub fn start(ip: &str, port: u16) -> Backend {
        let l = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), port)).unwrap();
        let addr = l.local_addr().unwrap();
        let mut b = Backend {
            addr,
            state: Arc::new(Mutex::new(BackendState::default())),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        b.run(l);
        b
    }

    fn run(&mut self, l: TcpListener) {
        let (state, stop) = (self.state.clone(), self.stop.clone());
        self.thread = Some(std::thread::spawn(move || {
            for conn in l.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut s) = conn else { continue };
                let Ok(peer) = s.peer_addr() else { continue };
                if state.lock().unwrap().refuse.contains(&peer.ip()) {
                    drop(s);
                    continue;
                }
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 2048];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 8192 {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                state.lock().unwrap().hits.push((Instant::now(), peer.ip()));
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        }));
    }

    /// Stops listening: new connections are refused.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Listens again on the same address.
    pub fn restart(&mut self) {
        self.stop();
        self.stop.store(false, Ordering::SeqCst);
        let l = TcpListener::bind(self.addr).unwrap();
        self.run(l);
    }

    /// Drops connections from `src` from now on.
    pub fn refuse(&self, src: &str) {
        self.state
            .lock()
            .unwrap()
            .refuse
            .insert(src.parse().unwrap());
    }

    /// Requests answered in the last `window`, per source address.
    pub fn hits_since(&self, since: Instant) -> HashMap<IpAddr, usize> {
        let mut m = HashMap::new();
        for (t, ip) in &self.state.lock().unwrap().hits {
            if *t >= since {
                *m.entry(*ip).or_insert(0) += 1;
            }
        }
        m
    }

    /// Every request answered: when, from which source.
    pub fn hits(&self) -> Vec<(Instant, IpAddr)> {
        self.state.lock().unwrap().hits.clone()
    }

    /// Requests answered since `since`.
    pub fn count_since(&self, since: Instant) -> usize {
        self.hits_since(since).values().sum()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A zone `cl.test.` with one check and `pools` pools of the backends, each named
/// `pN`. All instances load the same file, so their zone digests agree.
pub fn zones(dir: &Path, port: u16, pools: &[&[&Backend]]) {
    let mut body = format!(
        "[checks.web]\nhttp = {{ port = {port}, path = \"/health\" }}\ninterval = \"500ms\"\ntimeout = \"300ms\"\nfall = 2\nrise = 2\n"
    );
    for (i, nodes) in pools.iter().enumerate() {
        let list: Vec<String> = nodes
            .iter()
            .map(|b| format!("\"{}\"", b.addr.ip()))
            .collect();
        body.push_str(&format!(
            "[pools.p{i}]\ncheck = \"web\"\nttl = 5\nmax_answers = 8\nnodes = [{}]\n",
            list.join(", ")
        ));
    }
    crate::ops_support::write_atomic(
        &dir.join("cl.test.toml"),
        &crate::ops_support::zone("cl.test.", "1", &body),
    );
}

/// One Roundel instance in-process with cluster mode on.
pub struct Instance {
    pub name: String,
    pub source: String,
    pub dns: SocketAddr,
    pub admin: SocketAddr,
    freeze: Arc<AtomicBool>,
    server: InProcess,
}

/// Cluster settings of the test instances: short lease so failures show quickly.
pub fn cluster_config(etcd: &Etcd, name: &str, source: &str, observers: usize) -> ClusterConfig {
    let mut c = ClusterConfig::new(vec![etcd.url.clone()], name);
    c.prefix = "/roundel-test".into();
    c.observers = observers;
    c.lease_ttl = Duration::from_secs(2);
    c.grace = Duration::from_secs(4);
    c.probe_source = Some(source.parse().unwrap());
    c
}

impl Instance {
    /// Starts and waits (at most 15 s) until its admin API answers.
    pub fn start(zones: &Path, cfg: ClusterConfig) -> Instance {
        let mut listeners = Listeners::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
        let admin = listeners
            .bind_admin("127.0.0.1:0".parse().unwrap())
            .unwrap();
        let dns = listeners.udp_addrs()[0];
        let mut opts = ServeOptions::new(zones);
        opts.udp_threads = 1;
        opts.watch_zones = false;
        opts.admin_token = Token::new(TOKEN);
        // The test client at 127.0.0.1 is exempt from rate limiting, as in the other
        // harnesses (tests/rrl_flood.rs floods from other addresses).
        opts.rrl.exempt = vec![roundel::dns::rrl_config::Prefix::parse("127.0.0.1").unwrap()];
        let name = cfg.name.clone();
        let source = cfg.probe_source.unwrap().to_string();
        let freeze = cfg.freeze.clone();
        opts.cluster = Some(cfg);
        let server = InProcess::spawn(&format!("roundel-{name}"), opts, listeners);
        let ok = wait_until(Duration::from_secs(15), || {
            http_get_blocking(admin, "/api/v1/status").is_some_and(|(s, _)| s == 200)
        });
        assert!(ok.is_some(), "instance {name} did not start within 15 s");
        Instance {
            name,
            source,
            dns,
            admin,
            freeze,
            server,
        }
    }

    /// The cluster status (`/api/v1/cluster`).
    pub fn cluster(&self) -> Value {
        let (s, body) =
            http_get_blocking(self.admin, "/api/v1/cluster").expect("admin API answers");
        assert_eq!(s, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The cluster mode (`joined`, `degraded`...).
    pub fn mode(&self) -> String {
        self.cluster()["mode"].as_str().unwrap().to_owned()
    }

    /// The addresses this instance answers for `pN.cl.test. A`.
    pub fn answer(&self, pool: usize) -> Vec<String> {
        crate::ops_support::addrs(&crate::ops_support::query(
            self.dns,
            &format!("p{pool}.cl.test."),
            crate::ops_support::A,
        ))
    }

    /// Like a killed process: no more etcd traffic (its lease runs out) and no probes,
    /// then the server stops.
    pub fn kill(mut self) {
        self.freeze.store(true, Ordering::SeqCst);
        self.server.stop();
    }
}

/// A blocking POST with the admin token; returns the status.
pub fn post(admin: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// The sorted addresses of `backends`.
pub fn ips(backends: &[&Backend]) -> Vec<String> {
    let mut v: Vec<String> = backends.iter().map(|b| b.addr.ip().to_string()).collect();
    v.sort();
    v
}

/// A directory for zones.
pub fn zone_dir() -> TempDir {
    TempDir::new("cluster-zones")
}

/// `PathBuf` of a temp dir.
pub fn path(d: &TempDir) -> PathBuf {
    d.path().to_path_buf()
}
