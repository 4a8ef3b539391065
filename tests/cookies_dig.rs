//! DNS cookies end to end: the `roundel` binary with a `[cookies]` secret file, queried
//! with `dig +cookie` (bind9-dnsutils). A server cookie is returned and verifies under the
//! configured secret; sent back it validates (the `valid` counter of /metrics); a tampered
//! one does not; the RFC 9018 rollover (new secret second, then first, then alone, each
//! followed by SIGHUP) keeps old cookies valid until the old secret is removed; a
//! malformed COOKIE option gets FORMERR; two servers sharing the file accept each other's
//! cookies and a server with another secret does not.

mod hardening_support;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hardening_support::ops_support::{TempDir, write_atomic, zone};
use hardening_support::*;
use roundel::dns::cookie::{Secret, server_cookie};

const BIN: &str = env!("CARGO_BIN_EXE_roundel");
const S1: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
const S2: &str = "445536bcd2513298075a5d379663c962";

fn secret(hex: &str) -> Secret {
    unhex(hex).try_into().unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn free_port() -> u16 {
    let l = roundel::server::Listeners::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
    l.udp_addrs()[0].port()
}

/// A `roundel serve` process, killed on drop.
struct Roundel {
    child: Child,
    dns: SocketAddr,
    admin: SocketAddr,
    _dir: TempDir,
}

impl Drop for Roundel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Roundel {
    /// Starts the binary with `[cookies] secret_file = secret_file` (or none) and waits
    /// (bounded) until it answers.
    fn start(secret_file: Option<&Path>) -> Roundel {
        let dir = TempDir::new("cookies");
        std::fs::create_dir_all(dir.join("zones")).unwrap();
        write_atomic(
            &dir.join("zones/ck.test.toml"),
            &zone("ck.test.", "1", "[names.www]\nA = \"192.0.2.80\""),
        );
        let (port, aport) = (free_port(), free_port());
        let mut conf = format!(
            "listen = [\"127.0.0.1:{port}\"]\nzones = \"zones\"\n[admin]\nlisten = \"127.0.0.1:{aport}\"\n"
        );
        if let Some(f) = secret_file {
            conf += &format!("[cookies]\nsecret_file = {:?}\n", f.to_str().unwrap());
        }
        std::fs::write(dir.join("roundel.toml"), conf).unwrap();
        let log = std::fs::File::create(dir.join("roundel.log")).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(dir.join("roundel.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let r = Roundel {
            child,
            dns: format!("127.0.0.1:{port}").parse().unwrap(),
            admin: format!("127.0.0.1:{aport}").parse().unwrap(),
            _dir: dir,
        };
        let sock = udp_from("127.0.0.1");
        let deadline = Instant::now() + Duration::from_secs(20);
        for i in 0u16.. {
            if ask(&sock, r.dns, &query(i, "www.ck.test.", 1, None)).is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "roundel did not answer");
        }
        r
    }

    fn metric(&self, result: &str) -> u64 {
        metric(
            self.admin,
            &format!("roundel_dns_cookies_total{{result=\"{result}\"}}"),
        )
    }

    fn sighup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

/// `dig +cookie[=VALUE]` against `r`: the status and the COOKIE it printed (hex).
fn dig(r: &Roundel, cookie: Option<&str>) -> (String, String, String) {
    dig_with(r, cookie, "+notcp")
}

/// `dig` with one more option (`+tcp`).
fn dig_with(r: &Roundel, cookie: Option<&str>, extra: &str) -> (String, String, String) {
    let arg = cookie.map_or("+cookie".to_owned(), |c| format!("+cookie={c}"));
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &r.dns.port().to_string(),
            "+tries=1",
            "+time=2",
            &arg,
            extra,
            "www.ck.test.",
            "A",
        ])
        .output()
        .expect("dig (bind9-dnsutils) is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("none")
        .to_owned();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("; COOKIE: "))
        .unwrap_or_else(|| panic!("no COOKIE in dig's output:\n{text}"));
    let hex = line.split_whitespace().next().unwrap().to_owned();
    (status, hex, line.to_owned())
}

/// Whether `cookie` (client + server, hex) is the RFC 9018 cookie made with `secret` for
/// 127.0.0.1 at the timestamp it carries.
fn made_with(cookie: &str, secret: &str) -> bool {
    let b = unhex(cookie);
    let client: [u8; 8] = b[..8].try_into().unwrap();
    let ts = u32::from_be_bytes(b[12..16].try_into().unwrap());
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    b.len() == 24 && server_cookie(&self::secret(secret), &client, ts, ip)[..] == b[8..]
}

/// Polls (bounded) until `f` holds.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dig_gets_a_server_cookie_that_validates_and_survives_a_rollover() {
    let secrets = TempDir::new("cookie-secret");
    let file = secrets.join("cookie.secret");
    write_atomic(&file, &format!("{S1}\n"));
    let r = Roundel::start(Some(&file));

    // A client cookie alone: a version-1 server cookie made with the configured secret.
    let (status, c1, line) = dig(&r, None);
    assert_eq!(status, "NOERROR");
    assert!(line.contains("(good)"), "{line}");
    assert_eq!((c1.len(), &c1[16..24]), (48, "01000000"), "{c1}");
    assert!(made_with(&c1, S1), "{c1}");
    assert_eq!(r.metric("client_only"), 1);

    // Sent back, it validates.
    let (status, echoed, _) = dig(&r, Some(&c1));
    assert_eq!(status, "NOERROR");
    assert_eq!(echoed, c1, "a fresh valid cookie is echoed as it is");
    assert_eq!(r.metric("valid"), 1);

    // The same over TCP.
    let (status, tcp_new, line) = dig_with(&r, None, "+tcp");
    assert_eq!(status, "NOERROR");
    assert!(made_with(&tcp_new, S1) && line.contains("(good)"), "{line}");
    let (_, tcp_echoed, _) = dig_with(&r, Some(&c1), "+tcp");
    assert_eq!(tcp_echoed, c1);
    assert_eq!((r.metric("client_only"), r.metric("valid")), (2, 2));

    // Tampered, it does not: answered normally, with a new cookie.
    let last = if c1.ends_with('0') { "1" } else { "0" };
    let tampered = format!("{}{last}", &c1[..47]);
    let (status, fresh, _) = dig(&r, Some(&tampered));
    assert_eq!(status, "NOERROR");
    assert!(made_with(&fresh, S1) && fresh != tampered);
    assert_eq!(r.metric("invalid"), 1);

    // Rollover stage 1: the new secret is learnt (second line); cookies still made with S1.
    write_atomic(&file, &format!("{S1}\n{S2}\n"));
    r.sighup();
    // Stage 2: cookies made with S2, S1's still accepted.
    write_atomic(&file, &format!("# rolled over\n{S2}\n{S1}\n"));
    r.sighup();
    wait_for("cookies made with the new secret", || {
        made_with(&dig(&r, None).1, S2)
    });
    let valid = r.metric("valid");
    let (status, reissued, _) = dig(&r, Some(&c1));
    assert_eq!(status, "NOERROR");
    assert_eq!(
        r.metric("valid"),
        valid + 1,
        "the old secret's cookie is valid"
    );
    assert!(
        made_with(&reissued, S2),
        "and is replaced by one of the new secret"
    );

    // Stage 3: the old secret removed; its cookies are no longer valid.
    write_atomic(&file, &format!("{S2}\n"));
    r.sighup();
    wait_for("the old secret to be dropped", || {
        let invalid = r.metric("invalid");
        dig(&r, Some(&c1));
        r.metric("invalid") == invalid + 1
    });
    // A secret file broken on reload keeps the secrets in use.
    write_atomic(&file, "not a secret\n");
    r.sighup();
    let valid = r.metric("valid");
    let (_, still, _) = dig(&r, Some(&reissued));
    assert_eq!(still, reissued);
    assert_eq!(r.metric("valid"), valid + 1);
}

#[test]
fn malformed_cookie_options_get_formerr() {
    let r = Roundel::start(None);
    let sock = udp_from("127.0.0.1");
    for (i, len) in [1usize, 7, 9, 12, 15, 41].into_iter().enumerate() {
        let m = query(i as u16, "www.ck.test.", 1, Some(&vec![0xab; len]));
        let rep = ask(&sock, r.dns, &m).expect("an answer");
        assert_eq!(
            (rep.rcode, rep.answers),
            (1, 0),
            "{len}-byte cookie: {rep:?}"
        );
    }
    // 8 and 16 to 40 bytes are well-formed.
    for (i, len) in [8usize, 16, 24, 40].into_iter().enumerate() {
        let m = query(100 + i as u16, "www.ck.test.", 1, Some(&vec![0xab; len]));
        let rep = ask(&sock, r.dns, &m).expect("an answer");
        assert_eq!(
            (rep.rcode, rep.answers),
            (0, 1),
            "{len}-byte cookie: {rep:?}"
        );
        assert_eq!(rep.cookie.map(|c| c.len()), Some(24));
    }
}

#[test]
fn servers_sharing_the_secret_file_accept_each_others_cookies() {
    let secrets = TempDir::new("cookie-shared");
    let file = secrets.join("cookie.secret");
    write_atomic(&file, &format!("{S2}\n"));
    let a = Roundel::start(Some(&file));
    let b = Roundel::start(Some(&file));
    let other = Roundel::start(None);

    let (_, from_a, _) = dig(&a, None);
    let (status, at_b, _) = dig(&b, Some(&from_a));
    assert_eq!(status, "NOERROR");
    assert_eq!(b.metric("valid"), 1, "B validates A's cookie");
    assert_eq!(at_b, from_a);
    let (_, from_b, _) = dig(&b, None);
    dig(&a, Some(&from_b));
    assert_eq!(a.metric("valid"), 1, "and A validates B's");

    // A server with its own (random) secret does not.
    let (status, _, _) = dig(&other, Some(&from_a));
    assert_eq!(status, "NOERROR");
    assert_eq!((other.metric("valid"), other.metric("invalid")), (0, 1));
}
