//! DNS cookies (RFC 7873) with the interoperable server cookie of RFC 9018.
//!
//! A client sends an 8-byte client cookie; Roundel answers with it and a 16-byte server
//! cookie: version 1, three reserved bytes, a 4-byte timestamp and an 8-byte SipHash-2-4
//! of client cookie | version | reserved | timestamp | client address under a 128-bit
//! secret (RFC 9018 section 4). A client that returns a server cookie which verifies has
//! shown that it receives answers at its source address: it is not spoofed, so rate
//! limiting leaves it alone ([`super::rrl`]).
//!
//! Cookies are answered, never required: a missing or wrong server cookie gets a normal
//! answer with a new server cookie (RFC 7873 section 5.2.3), never BADCOOKIE. Requiring
//! them would refuse the many resolvers that send none; rate limiting already covers the
//! clients without one.
//!
//! Every server of an NS or anycast set that shares the secret (see
//! [`super::cookie_secret`]) verifies the others' cookies. Several secrets can be held at
//! once for rollover: the first makes cookies, all verify them (RFC 9018 section 5).

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use siphasher::sip::SipHasher24;

use super::wire::{CLIENT_COOKIE_LEN, Edns};

/// Length of a server secret: SipHash-2-4 takes a 128-bit key.
pub const SECRET_LEN: usize = 16;
/// Length of an RFC 9018 server cookie.
pub const SERVER_COOKIE_LEN: usize = 16;
/// Server cookie version defined by RFC 9018 section 4.1.
pub const COOKIE_VERSION: u8 = 1;
/// A server cookie older than this (seconds) is no longer valid (RFC 9018 section 4.3).
pub const MAX_COOKIE_AGE: u32 = 3600;
/// A server cookie dated further ahead than this (seconds) is not valid: the clock skew
/// allowed between the servers of a set (RFC 9018 section 4.3).
pub const MAX_COOKIE_FUTURE: u32 = 300;
/// A valid server cookie older than this (seconds) is replaced by a fresh one in the
/// answer (RFC 9018 section 4.3: "at least if ... more than half an hour old").
pub const COOKIE_REFRESH_AGE: u32 = 1800;
/// Secrets held at once: the one in use plus those still accepted during a rollover.
pub const MAX_SECRETS: usize = 3;

/// A 128-bit server secret.
pub type Secret = [u8; SECRET_LEN];

/// The server secrets: the first makes server cookies, every one verifies them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secrets {
    keys: [Secret; MAX_SECRETS],
    len: usize,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secrets themselves.
        write!(f, "Secrets({} held)", self.len)
    }
}

impl Secrets {
    /// The given secrets, the first one in use; `None` when there are none or more than
    /// [`MAX_SECRETS`].
    pub fn new(secrets: &[Secret]) -> Option<Secrets> {
        if secrets.is_empty() || secrets.len() > MAX_SECRETS {
            return None;
        }
        let mut keys = [[0; SECRET_LEN]; MAX_SECRETS];
        keys[..secrets.len()].copy_from_slice(secrets);
        Some(Secrets {
            keys,
            len: secrets.len(),
        })
    }

    /// One secret from the operating system's random source.
    pub fn random() -> std::io::Result<Secrets> {
        let mut key = [0; SECRET_LEN];
        getrandom::fill(&mut key).map_err(std::io::Error::from)?;
        Ok(Secrets::new(&[key]).expect("one secret"))
    }

    /// The secret that makes new server cookies.
    pub fn current(&self) -> &Secret {
        &self.keys[0]
    }

    /// Every secret accepted when verifying.
    pub fn all(&self) -> &[Secret] {
        &self.keys[..self.len]
    }
}

/// The 8-byte hash of an RFC 9018 server cookie (section 4.4).
fn hash(secret: &Secret, client: &[u8; CLIENT_COOKIE_LEN], head: &[u8; 8], ip: IpAddr) -> u64 {
    let mut h = SipHasher24::new_with_key(secret);
    h.write(client);
    h.write(head);
    match ip {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
    h.finish()
}

/// The RFC 9018 version 1 server cookie for `client` at `ip`, made at `timestamp` (Unix
/// seconds, wrapping).
pub fn server_cookie(
    secret: &Secret,
    client: &[u8; CLIENT_COOKIE_LEN],
    timestamp: u32,
    ip: IpAddr,
) -> [u8; SERVER_COOKIE_LEN] {
    let mut out = [0u8; SERVER_COOKIE_LEN];
    out[0] = COOKIE_VERSION;
    out[4..8].copy_from_slice(&timestamp.to_be_bytes());
    let head: [u8; 8] = out[..8].try_into().expect("8 bytes");
    // SipHash's output is the little-endian encoding of its 64-bit result (the reference
    // implementation, and the RFC 9018 appendix A vectors).
    out[8..].copy_from_slice(&hash(secret, client, &head, ip).to_le_bytes());
    out
}

/// What a request's cookie showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieStatus {
    /// No COOKIE option (or cookies are off).
    Absent,
    /// A client cookie alone: the client learns a server cookie now.
    ClientOnly,
    /// A server cookie this server set made for this client, and still in date.
    Valid,
    /// A server cookie that does not verify (another server, another address, an old or
    /// future timestamp, a forgery): answered like [`CookieStatus::ClientOnly`].
    Invalid,
}

/// Verifies the server cookie `server` sent with `client` from `ip` at `now`: its age in
/// seconds and whether the current secret made it, or `None` when it is not valid.
pub fn verify(
    secrets: &Secrets,
    client: &[u8; CLIENT_COOKIE_LEN],
    server: &[u8],
    ip: IpAddr,
    now: u32,
) -> Option<(u32, bool)> {
    // RFC 9018 section 4.4: exactly 16 bytes, so that the hash input length is fixed.
    if server.len() != SERVER_COOKIE_LEN || server[0] != COOKIE_VERSION {
        return None;
    }
    let timestamp = u32::from_be_bytes(server[4..8].try_into().ok()?);
    // Serial number arithmetic (RFC 1982), as section 4.3 requires.
    let age = now.wrapping_sub(timestamp) as i32;
    if age > MAX_COOKIE_AGE as i32 || age < -(MAX_COOKIE_FUTURE as i32) {
        return None;
    }
    let head: [u8; 8] = server[..8].try_into().ok()?;
    let got = u64::from_le_bytes(server[8..].try_into().ok()?);
    // The reserved bytes are hashed as received (section 4.2).
    secrets.all().iter().enumerate().find_map(|(i, s)| {
        (hash(s, client, &head, ip) == got).then_some((age.max(0) as u32, i == 0))
    })
}

/// The current time as an RFC 9018 timestamp.
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Cookie handling for a running server: on or off, and the secrets (replaced on reload).
#[derive(Debug)]
pub struct Cookies {
    enabled: bool,
    secrets: ArcSwap<Secrets>,
}

impl Cookies {
    /// Cookies answered with `secrets`.
    pub fn new(secrets: Secrets) -> Self {
        Self {
            enabled: true,
            secrets: ArcSwap::new(Arc::new(secrets)),
        }
    }

    /// Cookies off: the COOKIE option is ignored and none is sent, as by a server that
    /// does not implement them (RFC 7873 section 5.2.1).
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            secrets: ArcSwap::new(Arc::new(Secrets::new(&[[0; SECRET_LEN]]).expect("one"))),
        }
    }

    /// Whether cookies are answered.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Replaces the secrets (a rollover); queries in flight finish with the old ones.
    pub fn set_secrets(&self, secrets: Secrets) {
        self.secrets.store(Arc::new(secrets));
    }

    /// Looks at the COOKIE option of a request from `ip` and leaves in `edns` the option
    /// to send back: the client cookie with a fresh server cookie, or the one received
    /// when it is valid and recent. Allocates nothing (the secrets are read lock-free);
    /// reads the clock only when there is a cookie.
    pub fn process(&self, edns: Option<&mut Edns>, ip: IpAddr) -> CookieStatus {
        if edns.as_ref().is_none_or(|e| e.cookie.is_none()) {
            return CookieStatus::Absent;
        }
        self.process_at(edns, ip, unix_now())
    }

    /// [`Cookies::process`] at a given time (Unix seconds).
    pub fn process_at(&self, edns: Option<&mut Edns>, ip: IpAddr, now: u32) -> CookieStatus {
        let Some(edns) = edns else {
            return CookieStatus::Absent;
        };
        let Some(cookie) = edns.cookie.as_mut() else {
            return CookieStatus::Absent;
        };
        if !self.enabled {
            edns.cookie = None;
            return CookieStatus::Absent;
        }
        let secrets = self.secrets.load();
        let status = if cookie.server().is_empty() {
            CookieStatus::ClientOnly
        } else {
            match verify(&secrets, &cookie.client, cookie.server(), ip, now) {
                // Still fresh and made with the current secret: echo it as it is.
                Some((age, true)) if age < COOKIE_REFRESH_AGE => return CookieStatus::Valid,
                Some(_) => CookieStatus::Valid,
                None => CookieStatus::Invalid,
            }
        };
        cookie.set_server(&server_cookie(secrets.current(), &cookie.client, now, ip));
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn secret(s: &str) -> Secret {
        hex(s).try_into().unwrap()
    }

    fn split(option: &str) -> ([u8; 8], Vec<u8>) {
        let b = hex(option);
        (b[..8].try_into().unwrap(), b[8..].to_vec())
    }

    // RFC 9018 appendix A.1: learning a new server cookie.
    #[test]
    fn rfc9018_a1_new_server_cookie() {
        let s = secret("e5e973e5a6b2a43f48e7dc849e37bfcf");
        let (client, _) = split("2464c4abcf10c957");
        let ip: IpAddr = "198.51.100.100".parse().unwrap();
        let c = server_cookie(&s, &client, 1559731985, ip);
        assert_eq!(c.to_vec(), hex("010000005cf79f111f8130c3eee29480"));
    }

    // A.2: the same client, 40 minutes later: valid, but old enough to be renewed.
    #[test]
    fn rfc9018_a2_renewed_cookie() {
        let s = Secrets::new(&[secret("e5e973e5a6b2a43f48e7dc849e37bfcf")]).unwrap();
        let (client, server) = split("2464c4abcf10c957010000005cf79f111f8130c3eee29480");
        let ip: IpAddr = "198.51.100.100".parse().unwrap();
        let now = 1559734385;
        assert_eq!(verify(&s, &client, &server, ip, now), Some((2400, true)));
        assert_eq!(
            server_cookie(s.current(), &client, now, ip).to_vec(),
            hex("010000005cf7a871d4a564a1442aca77")
        );
    }

    // A.3: reserved bytes set by another implementation are hashed as received.
    #[test]
    fn rfc9018_a3_reserved_bytes() {
        let s = Secrets::new(&[secret("e5e973e5a6b2a43f48e7dc849e37bfcf")]).unwrap();
        let (client, server) = split("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        let ip: IpAddr = "203.0.113.203".parse().unwrap();
        // The hash verifies (checked at the cookie's own time: at the query time in the
        // appendix, 1 h 52 min later, it has expired, so it is replaced either way).
        assert_eq!(
            verify(&s, &client, &server, ip, 1559727985),
            Some((0, true))
        );
        let now = 1559734700;
        assert_eq!(verify(&s, &client, &server, ip, now), None);
        assert_eq!(
            server_cookie(s.current(), &client, now, ip).to_vec(),
            hex("010000005cf7a9acf73a7810aca2381e")
        );
    }

    // A.4: IPv6, a cookie made with the previous secret after a rollover.
    #[test]
    fn rfc9018_a4_ipv6_rolled_over_secret() {
        let new = secret("445536bcd2513298075a5d379663c962");
        let old = secret("dd3bdf9344b678b185a6f5cb60fca715");
        let s = Secrets::new(&[new, old]).unwrap();
        let (client, server) = split("22681ab97d52c298010000005cf7c57926556bd0934c72f8");
        let ip: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        let now = 1559741961;
        assert_eq!(verify(&s, &client, &server, ip, now), Some((144, false)));
        assert_eq!(
            verify(&Secrets::new(&[new]).unwrap(), &client, &server, ip, now),
            None,
            "without the previous secret the cookie is not valid"
        );
        assert_eq!(
            server_cookie(&new, &client, now, ip).to_vec(),
            hex("010000005cf7c609a6bb79d16625507a")
        );
    }

    #[test]
    fn timestamps_outside_the_window_and_other_addresses_fail() {
        let s = Secrets::new(&[[7; SECRET_LEN]]).unwrap();
        let client = [1; 8];
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = 1_000_000;
        let c = server_cookie(s.current(), &client, t, ip);
        assert!(verify(&s, &client, &c, ip, t + MAX_COOKIE_AGE).is_some());
        assert!(verify(&s, &client, &c, ip, t + MAX_COOKIE_AGE + 1).is_none());
        assert!(verify(&s, &client, &c, ip, t - MAX_COOKIE_FUTURE).is_some());
        assert!(verify(&s, &client, &c, ip, t - MAX_COOKIE_FUTURE - 1).is_none());
        assert!(verify(&s, &client, &c, "192.0.2.2".parse().unwrap(), t).is_none());
        assert!(verify(&s, &[2; 8], &c, ip, t).is_none());
        assert!(verify(&s, &client, &c[..15], ip, t).is_none());
        // Serial arithmetic across the 2^32 wrap.
        let c = server_cookie(s.current(), &client, u32::MAX - 5, ip);
        assert_eq!(verify(&s, &client, &c, ip, 10), Some((16, true)));
    }
}
