//! Runs a reference authoritative server (Knot DNS or NSD) on a free loopback
//! port, self-contained in a temporary directory, for as long as the value lives.
//!
//! If the server cannot be started the caller panics: a missing reference must
//! make the tests FAIL, never skip. (`.ci/run` installs `knot` and `nsd`.)

use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::client::{self, Q, Transport};
use super::wire::{rcode, ty};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Knot,
    Nsd,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Knot => "knot",
            Kind::Nsd => "nsd",
        }
    }
}

/// One zone to serve: its origin (absolute, `example.test.`) and master-file text.
#[derive(Debug, Clone)]
pub struct ZoneText {
    pub origin: String,
    pub text: String,
}

/// Reads every `*.zone` file in `dir`; the origin is the file name without
/// `.zone` (`tests/data/example.test.zone` → `example.test.`).
pub fn master_files(dir: &Path) -> Vec<ZoneText> {
    let mut out = vec![];
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "zone") {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            out.push(ZoneText {
                origin: format!("{stem}."),
                text: fs::read_to_string(&p).unwrap(),
            });
        }
    }
    out.sort_by(|a, b| a.origin.cmp(&b.origin));
    assert!(!out.is_empty(), "no *.zone files in {}", dir.display());
    out
}

/// A unique, empty temporary directory (removed by [`Reference`]'s Drop).
pub fn temp_dir(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let d = std::env::temp_dir().join(format!(
        "roundel-tests/{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&d).unwrap();
    d
}

/// A free port on 127.0.0.1 for both UDP and TCP (free when we looked).
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port for UDP and TCP on 127.0.0.1");
}

/// Upper bound on a reference server's life, even if the test process is killed.
const MAX_LIFETIME_SECS: u32 = 900;

pub struct Reference {
    pub kind: Kind,
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Child,
}

impl Reference {
    /// Starts `kind` serving `zones` and waits (bounded) until every zone
    /// answers its SOA. Panics with the server's log if it does not come up.
    pub fn start(kind: Kind, zones: &[ZoneText]) -> Reference {
        Self::start_with(kind, zones, false)
    }

    /// As [`Reference::start`]; with `allow_transfer` (Knot only) AXFR from
    /// 127.0.0.0/8 is allowed, to read a zone back exactly as the server loaded it.
    pub fn start_with(kind: Kind, zones: &[ZoneText], allow_transfer: bool) -> Reference {
        let mut last_err = String::new();
        // A port can be taken between our look and the server's bind: retry.
        for _attempt in 0..3 {
            match Self::try_start(kind, zones, allow_transfer) {
                Ok(r) => return r,
                Err(e) => last_err = e,
            }
        }
        panic!("reference server {} did not start: {last_err}", kind.name());
    }

    fn try_start(
        kind: Kind,
        zones: &[ZoneText],
        allow_transfer: bool,
    ) -> Result<Reference, String> {
        let dir = temp_dir(kind.name());
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        for z in zones {
            let file = format!("{}.zone", z.origin.trim_end_matches('.'));
            fs::write(dir.join(file), &z.text).unwrap();
        }
        let d = dir.display();
        let (program, conf_text) = match kind {
            Kind::Knot => (
                "knotd",
                knot_conf(&d.to_string(), port, zones, allow_transfer),
            ),
            Kind::Nsd => ("nsd", nsd_conf(&d.to_string(), port, zones)),
        };
        let conf = dir.join(format!("{}.conf", kind.name()));
        fs::write(&conf, conf_text).unwrap();
        let log = fs::File::create(dir.join("server.log")).unwrap();
        let mut cmd = Command::new("timeout");
        cmd.args(["-s", "KILL", &MAX_LIFETIME_SECS.to_string(), program]);
        match kind {
            Kind::Knot => cmd.arg("-c").arg(&conf),
            Kind::Nsd => cmd.arg("-d").arg("-c").arg(&conf),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!("cannot run {program} (is it installed? apt-get install knot nsd): {e}")
            })?;
        let mut r = Reference {
            kind,
            addr,
            dir,
            child,
        };
        r.wait_ready(zones)
            .map_err(|e| format!("{e}\n--- {} log ---\n{}", kind.name(), r.log()))?;
        Ok(r)
    }

    /// Polls the SOA of every zone, at most 200 times over about 10 s.
    fn wait_ready(&mut self, zones: &[ZoneText]) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut pending: Vec<&ZoneText> = zones.iter().collect();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited early with {status}"));
            }
            pending.retain(|z| {
                let o = client::exchange(self.addr, Transport::Udp, &Q::new(&z.origin, ty::SOA));
                !matches!(o.message(), Some(m) if m.rcode() == rcode::NOERROR && m.aa && m.answer.len() == 1)
            });
            if pending.is_empty() {
                // TCP must be up too.
                let o = client::exchange(
                    self.addr,
                    Transport::Tcp,
                    &Q::new(&zones[0].origin, ty::SOA),
                );
                if o.message().is_some() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "not ready within 10 s on {} (zones still not answering: {:?})",
            self.addr,
            pending.iter().map(|z| &z.origin).collect::<Vec<_>>()
        ))
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        // TERM to `timeout`, which passes it on to the server; then wait, bounded.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let mut exited = false;
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !exited {
            // Kill the server itself through its pid file, then the wrapper.
            for pid_file in ["knot.pid", "nsd.pid"] {
                if let Ok(pid) = fs::read_to_string(self.dir.join(pid_file)) {
                    let _ = Command::new("kill").arg("-KILL").arg(pid.trim()).status();
                }
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "(reference {} files kept in {})",
                self.kind.name(),
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Knot DNS configuration: defaults (which already give minimal, RFC-shaped
/// answers), answer rotation off, a single worker of each kind, no control
/// socket use, no journal, zone files never rewritten.
pub fn knot_conf(dir: &str, port: u16, zones: &[ZoneText], allow_transfer: bool) -> String {
    let (acl, use_acl) = if allow_transfer {
        (
            "acl:\n  - id: xfr\n    address: 127.0.0.0/8\n    action: transfer\n",
            "    acl: xfr\n",
        )
    } else {
        ("", "")
    };
    let mut s = format!(
        r#"server:
    rundir: "{dir}"
    pidfile: "{dir}/knot.pid"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{dir}/db"
control:
    listen: "{dir}/knot.sock"
log:
  - target: stderr
    any: info
{acl}template:
  - id: default
    storage: "{dir}"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: on
{use_acl}zone:
"#
    );
    for z in zones {
        s += &format!("  - domain: {}\n", z.origin);
    }
    s
}

/// NSD configuration. `minimal-responses: yes` drops the apex NS from the
/// authority section of positive answers, but also drops the A/AAAA of MX and
/// SRV targets from the additional section (see tests/README.md).
pub fn nsd_conf(dir: &str, port: u16, zones: &[ZoneText]) -> String {
    let mut s = format!(
        r#"server:
    ip-address: 127.0.0.1@{port}
    server-count: 1
    do-ip6: no
    reuseport: no
    username: ""
    chroot: ""
    zonesdir: "{dir}"
    database: ""
    zonelistfile: "{dir}/zone.list"
    xfrdfile: "{dir}/xfrd.state"
    xfrdir: "{dir}"
    pidfile: "{dir}/nsd.pid"
    verbosity: 1
    hide-version: yes
    hide-identity: yes
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    minimal-responses: yes
remote-control:
    control-enable: no
"#
    );
    for z in zones {
        let n = z.origin.trim_end_matches('.');
        s += &format!("zone:\n    name: \"{n}\"\n    zonefile: \"{n}.zone\"\n");
    }
    s
}

/// Reads a whole zone by AXFR over TCP (the server must allow it): every
/// record in canonical text, sorted, the closing SOA left out. Bounded: at
/// most 1000 messages.
pub fn axfr(addr: SocketAddr, zone: &str) -> Result<Vec<String>, String> {
    use std::io::{Read, Write};
    let q = Q::new(zone, ty::AXFR).no_edns();
    let bytes = q.to_bytes(0x4158);
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, client::TIMEOUT).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(client::TIMEOUT)).unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    s.write_all(&framed).map_err(|e| e.to_string())?;
    let mut records = vec![];
    let mut soas = 0;
    for _ in 0..1000 {
        let mut len = [0u8; 2];
        s.read_exact(&mut len)
            .map_err(|e| format!("AXFR {zone}: {e}"))?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf)
            .map_err(|e| format!("AXFR {zone}: {e}"))?;
        let m = super::wire::parse(&buf).map_err(|e| format!("AXFR {zone}: {}", e.0))?;
        if m.rcode() != rcode::NOERROR {
            return Err(format!(
                "AXFR {zone}: {}",
                super::wire::rcode_name(m.rcode())
            ));
        }
        for r in &m.answer {
            if r.rtype == ty::SOA {
                soas += 1;
                if soas == 2 {
                    records.sort();
                    return Ok(records);
                }
            }
            records.push(r.text());
        }
    }
    Err(format!("AXFR {zone}: no closing SOA"))
}
