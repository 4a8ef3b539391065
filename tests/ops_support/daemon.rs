//! The `roundel` binary as a child process: `roundel serve` on 127.0.0.1 port 0 (DNS and
//! admin), its addresses read from its log, its stderr collected line by line, killed by
//! PID on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_roundel");

/// A running `roundel serve`.
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    /// DNS (UDP and TCP).
    pub dns: SocketAddr,
    /// Admin listener, unless started with `--no-admin`.
    pub admin: Option<SocketAddr>,
}

/// `addr=IP:PORT` in a log line.
fn addr_in(line: &str) -> Option<SocketAddr> {
    let at = line.find("addr=")? + 5;
    line[at..].split_whitespace().next()?.parse().ok()
}

impl Daemon {
    /// Starts `roundel serve --listen 127.0.0.1:0 --admin 127.0.0.1:0 ARGS` and waits (at
    /// most 20 s) until it logs both listeners; `Err` with the log when it exits first.
    pub fn start(args: &[&str]) -> Result<Daemon, String> {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--udp-threads", "1"]);
        if !args.contains(&"--no-admin") {
            cmd.args(["--admin", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(args)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("ROUNDEL_ADMIN_TOKEN")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let want_admin = !args.contains(&"--no-admin");
        let start = Instant::now();
        let mut d = Daemon {
            child,
            log,
            dns: "127.0.0.1:0".parse().unwrap(),
            admin: None,
        };
        for _ in 0..1000 {
            let lines = d.log();
            let dns = lines
                .iter()
                .find(|l| l.contains("serving DNS over UDP"))
                .and_then(|l| addr_in(l));
            let admin = lines
                .iter()
                .find(|l| l.contains("serving the admin API"))
                .and_then(|l| addr_in(l));
            if let Some(dns) = dns
                && (admin.is_some() || !want_admin)
            {
                d.dns = dns;
                d.admin = admin;
                return Ok(d);
            }
            if d.child.try_wait().ok().flatten().is_some() {
                // Let the reader thread drain what is left.
                std::thread::sleep(Duration::from_millis(100));
                return Err(d.log().join("\n"));
            }
            if start.elapsed() > Duration::from_secs(20) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("not up within 20 s:\n{}", d.log().join("\n")))
    }

    /// `roundel serve` of `zones` without the admin listener and the file watcher (so
    /// that only what the test does reloads); panics with the log if it does not start.
    pub fn quiet(zones: &std::path::Path) -> Daemon {
        Self::start(&[
            "--no-admin",
            "--no-watch",
            "--zones",
            zones.to_str().unwrap(),
        ])
        .unwrap_or_else(|log| panic!("the server did not start:\n{log}"))
    }

    /// Everything logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (at most `bound`) until a line of the log satisfies `find`; what it found.
    pub fn wait_log<T>(&self, bound: Duration, find: impl Fn(&str) -> Option<T>) -> Option<T> {
        let start = Instant::now();
        for _ in 0..(bound.as_millis() / 10 + 1) {
            if let Some(t) = self.log.lock().unwrap().iter().find_map(|l| find(l)) {
                return Some(t);
            }
            if start.elapsed() > bound {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// The process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADMIN/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin.expect("an admin listener"))
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion (bounded by `timeout -s KILL 60`): exit code, stdout,
/// stderr.
pub fn run(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new("timeout")
        .args(["-s", "KILL", "60", BIN])
        .args(args)
        .current_dir(dir)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("run roundel");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
