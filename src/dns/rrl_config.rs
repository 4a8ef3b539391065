//! The `[rrl]` and `[cookies]` tables of the server configuration file: response rate
//! limiting and DNS cookies, with their documented defaults and checks.
//!
//! ```toml
//! [rrl]
//! enabled = true                # on by default
//! responses_per_second = 200    # per client prefix, response class and name
//! slip = 2                      # every 2nd limited answer goes out truncated (TC=1)
//! ipv4_prefix = 24
//! ipv6_prefix = 56
//! table_size = 524288           # buckets, rounded up to a power of two (8 bytes each)
//! exempt = ["192.0.2.0/24", "2001:db8::/32"]
//! [cookies]
//! enabled = true                # answer DNS cookies (RFC 7873, RFC 9018)
//! secret_file = "cookie.secret" # shared by every server of the NS set; else random
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::source::SourceMap;

/// Responses per second allowed per client prefix, response class and name: NSD's
/// `rrl-ratelimit` default. A resolver asking the same name this often is rare; a
/// reflection attack is far above it.
pub const DEFAULT_RESPONSES_PER_SECOND: u32 = 200;
/// Highest configurable rate (the table's counters hold up to a million per second).
pub const MAX_RESPONSES_PER_SECOND: u32 = 100_000;
/// Every `slip`-th limited response is sent truncated (TC=1, no records) instead of being
/// dropped, so that a real client behind a spoofed flood retries over TCP: NSD's and
/// BIND's default. 0 drops every limited response; 1 truncates every one.
pub const DEFAULT_SLIP: u32 = 2;
/// Highest configurable slip (BIND's limit).
pub const MAX_SLIP: u32 = 10;
/// IPv4 clients are counted per /24 (NSD, BIND).
pub const DEFAULT_IPV4_PREFIX: u8 = 24;
/// IPv6 clients are counted per /56 (BIND; a site is usually given a /56 or a /48).
pub const DEFAULT_IPV6_PREFIX: u8 = 56;
/// Buckets in the rate-limiting table: 4 MiB. NSD uses about a million, Knot 393,241.
pub const DEFAULT_TABLE_SIZE: usize = 1 << 19;
/// Smallest table.
pub const MIN_TABLE_SIZE: usize = 1 << 10;
/// Largest table (128 MiB).
pub const MAX_TABLE_SIZE: usize = 1 << 24;

/// An address prefix such as `192.0.2.0/24`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// The address, zero beyond the prefix.
    pub addr: IpAddr,
    /// The prefix length.
    pub len: u8,
}

impl Prefix {
    /// Parses `ADDR` or `ADDR/LEN`.
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("not an address or prefix: {s:?} (like \"192.0.2.0/24\")"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= max)
                .ok_or_else(|| format!("prefix length of {s:?} must be 0 to {max}"))?,
            None => max,
        };
        Ok(Prefix {
            addr: mask(addr, len),
            len,
        })
    }

    /// Whether `ip` is inside the prefix. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.len) == self.addr
    }
}

/// `ip` with every bit beyond the first `len` cleared.
pub fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len.min(32))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len.min(128))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// Response rate limiting, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// Whether UDP responses are rate-limited.
    pub enabled: bool,
    /// Responses per second per client prefix, response class and name.
    pub responses_per_second: u32,
    /// Every `slip`-th limited response is sent truncated; 0: none.
    pub slip: u32,
    /// IPv4 prefix length clients are grouped by.
    pub ipv4_prefix: u8,
    /// IPv6 prefix length clients are grouped by.
    pub ipv6_prefix: u8,
    /// Buckets in the table (a power of two).
    pub table_size: usize,
    /// Clients never limited.
    pub exempt: Vec<Prefix>,
}

impl Default for RrlConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            responses_per_second: DEFAULT_RESPONSES_PER_SECOND,
            slip: DEFAULT_SLIP,
            ipv4_prefix: DEFAULT_IPV4_PREFIX,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
            table_size: DEFAULT_TABLE_SIZE,
            exempt: Vec::new(),
        }
    }
}

impl RrlConfig {
    /// Rate limiting off.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// DNS cookies, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// Whether cookies are answered.
    pub enabled: bool,
    /// The shared secret file, absolute; without one a random secret is made at start.
    pub secret_file: Option<PathBuf>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            secret_file: None,
        }
    }
}

/// The `[rrl]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRrlConfig {
    enabled: Option<bool>,
    responses_per_second: Option<Spanned<u32>>,
    slip: Option<Spanned<u32>>,
    ipv4_prefix: Option<Spanned<u8>>,
    ipv6_prefix: Option<Spanned<u8>>,
    table_size: Option<Spanned<usize>>,
    #[serde(default)]
    exempt: Vec<Spanned<String>>,
}

/// The `[cookies]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCookieConfig {
    enabled: Option<bool>,
    secret_file: Option<Spanned<PathBuf>>,
}

fn ranged<T: Copy + PartialOrd + std::fmt::Display>(
    map: &mut SourceMap,
    v: &Option<Spanned<T>>,
    key: &str,
    range: std::ops::RangeInclusive<T>,
    default: T,
) -> T {
    match v {
        Some(s) if !range.contains(s.get_ref()) => {
            map.report(
                s.span().start,
                key,
                format!(
                    "must be {} to {}, not {}",
                    range.start(),
                    range.end(),
                    s.get_ref()
                ),
            );
            default
        }
        Some(s) => *s.get_ref(),
        None => default,
    }
}

impl RawRrlConfig {
    /// Checks the table, reporting errors with positions into `map`.
    pub fn validate(&self, map: &mut SourceMap) -> RrlConfig {
        let d = RrlConfig::default();
        let exempt = self
            .exempt
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match Prefix::parse(p.get_ref()) {
                Ok(p) => Some(p),
                Err(reason) => {
                    map.report(p.span().start, format!("rrl.exempt[{i}]"), reason);
                    None
                }
            })
            .collect();
        let table_size = ranged(
            map,
            &self.table_size,
            "rrl.table_size",
            MIN_TABLE_SIZE..=MAX_TABLE_SIZE,
            d.table_size,
        );
        RrlConfig {
            enabled: self.enabled.unwrap_or(d.enabled),
            responses_per_second: ranged(
                map,
                &self.responses_per_second,
                "rrl.responses_per_second",
                1..=MAX_RESPONSES_PER_SECOND,
                d.responses_per_second,
            ),
            slip: ranged(map, &self.slip, "rrl.slip", 0..=MAX_SLIP, d.slip),
            ipv4_prefix: ranged(map, &self.ipv4_prefix, "rrl.ipv4_prefix", 8..=32, 24),
            ipv6_prefix: ranged(map, &self.ipv6_prefix, "rrl.ipv6_prefix", 16..=128, 56),
            table_size: table_size.next_power_of_two(),
            exempt,
        }
    }
}

impl RawCookieConfig {
    /// Checks the table (and reads the secret file, so that a bad one is reported now
    /// with the configuration's position); relative paths are taken from `base`.
    pub fn validate(&self, map: &mut SourceMap, base: &Path) -> CookieConfig {
        let secret_file = self.secret_file.as_ref().map(|f| {
            let path = base.join(f.get_ref());
            if let Err(e) = super::cookie_secret::read(&path) {
                map.report(f.span().start, "cookies.secret_file", e.to_string());
            }
            path
        });
        CookieConfig {
            enabled: self.enabled.unwrap_or(true),
            secret_file,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_mask_and_match() {
        let p = Prefix::parse("192.0.2.77/24").unwrap();
        assert_eq!(p.addr, "192.0.2.0".parse::<IpAddr>().unwrap());
        assert!(p.contains("192.0.2.200".parse().unwrap()));
        assert!(p.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!p.contains("192.0.3.1".parse().unwrap()));
        assert!(!p.contains("2001:db8::1".parse().unwrap()));
        let p = Prefix::parse("2001:db8::/32").unwrap();
        assert!(p.contains("2001:db8:ffff::1".parse().unwrap()));
        assert_eq!(Prefix::parse("127.0.0.3").unwrap().len, 32);
        assert!(Prefix::parse("192.0.2.0/33").is_err());
        assert!(Prefix::parse("example.com").is_err());
        assert_eq!(
            mask("2001:db8:aaaa:bbcc::1".parse().unwrap(), 56),
            "2001:db8:aaaa:bb00::".parse::<IpAddr>().unwrap()
        );
    }
}
