//! The `[cluster]` table of the server configuration file, validated into a
//! [`ClusterConfig`].
//!
//! ```toml
//! [cluster]
//! etcd = ["http://127.0.0.1:2379"]   # endpoints (https:// with the TLS options below)
//! name = "ns1"                        # unique per instance; default: the host name
//! prefix = "/roundel"                 # key prefix, so several clusters share one etcd
//! observers = 3                       # instances probing each (target, check)
//! lease_ttl = "6s"                    # membership lease
//! health_rule = "quorum"              # quorum | any-up | all-up
//! grace = "12s"                       # etcd unreachable this long: probe everything locally
//! probe_source = "127.0.0.2"          # source address of this instance's health checks
//! user = "roundel"                    # etcd authentication (with password or password_file)
//! password_file = "etcd.password"
//! ca_file = "ca.pem"                  # TLS: CA of the etcd servers
//! cert_file = "client.pem"            # TLS client certificate and key
//! key_file = "client.key"
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::pool::duration::parse_duration;
use crate::source::SourceMap;

/// Key prefix when none is configured.
pub const DEFAULT_PREFIX: &str = "/roundel";
/// Observers per (target, check) when not configured (fewer when there are fewer members).
pub const DEFAULT_OBSERVERS: usize = 3;
/// Membership lease TTL when not configured.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(6);
/// Shortest lease TTL accepted: etcd raises anything below about 1.5 election timeouts
/// (2 s with its default timers) anyway.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(2);
/// Longest lease TTL accepted: beyond this a dead member keeps its share of the probes
/// unobserved for too long.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(300);
/// Most observers accepted per (target, check).
pub const MAX_OBSERVERS: usize = 15;

/// How the observations of a node's observers combine into one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HealthRule {
    /// Down when a strict majority of the fresh observations say down, up when a strict
    /// majority say up; otherwise the last state stays.
    #[default]
    Quorum,
    /// Up when any fresh observation says up.
    AnyUp,
    /// Up only when every fresh observation says up.
    AllUp,
}

impl HealthRule {
    /// Name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthRule::Quorum => "quorum",
            HealthRule::AnyUp => "any-up",
            HealthRule::AllUp => "all-up",
        }
    }
}

/// The `[cluster]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClusterConfig {
    /// etcd endpoints.
    pub etcd: Spanned<Vec<String>>,
    /// Member name.
    pub name: Option<Spanned<String>>,
    /// Key prefix.
    pub prefix: Option<Spanned<String>>,
    /// Observers per (target, check).
    pub observers: Option<Spanned<i64>>,
    /// Lease TTL.
    pub lease_ttl: Option<Spanned<String>>,
    /// Health rule.
    pub health_rule: Option<Spanned<String>>,
    /// Grace period before local fallback.
    pub grace: Option<Spanned<String>>,
    /// Source address of health checks.
    pub probe_source: Option<Spanned<String>>,
    /// etcd user.
    pub user: Option<Spanned<String>>,
    /// etcd password.
    pub password: Option<Spanned<String>>,
    /// File holding the etcd password.
    pub password_file: Option<Spanned<PathBuf>>,
    /// CA certificate (PEM) of the etcd servers.
    pub ca_file: Option<Spanned<PathBuf>>,
    /// Client certificate (PEM).
    pub cert_file: Option<Spanned<PathBuf>>,
    /// Client key (PEM).
    pub key_file: Option<Spanned<PathBuf>>,
}

/// TLS material for the etcd connection, read at load.
#[derive(Clone, Default)]
pub struct EtcdTls {
    /// CA certificate, PEM.
    pub ca: Option<Vec<u8>>,
    /// Client certificate and key, PEM.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca", &self.ca.is_some())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

/// The `[cluster]` table, validated.
#[derive(Clone)]
pub struct ClusterConfig {
    /// etcd endpoints.
    pub endpoints: Vec<String>,
    /// This member's name (unique in the cluster).
    pub name: String,
    /// Key prefix, without a trailing slash.
    pub prefix: String,
    /// Observers per (target, check).
    pub observers: usize,
    /// Membership lease TTL (whole seconds, as etcd counts them).
    pub lease_ttl: Duration,
    /// How observations combine.
    pub health_rule: HealthRule,
    /// How long etcd may be unreachable before this instance probes every node itself.
    pub grace: Duration,
    /// Source address of this instance's health checks.
    pub probe_source: Option<IpAddr>,
    /// etcd user and password.
    pub auth: Option<(String, String)>,
    /// TLS material.
    pub tls: EtcdTls,
    /// Test hook: when set, the instance behaves like a paused process: no etcd traffic
    /// (its lease runs out) and no probes.
    #[doc(hidden)]
    pub freeze: Arc<AtomicBool>,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("endpoints", &self.endpoints)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("observers", &self.observers)
            .field("lease_ttl", &self.lease_ttl)
            .field("health_rule", &self.health_rule)
            .field("grace", &self.grace)
            .field("probe_source", &self.probe_source)
            .field("auth", &self.auth.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls)
            .finish()
    }
}

impl ClusterConfig {
    /// A configuration with the defaults, for `endpoints` and `name`.
    pub fn new(endpoints: Vec<String>, name: impl Into<String>) -> Self {
        Self {
            endpoints,
            name: name.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            observers: DEFAULT_OBSERVERS,
            lease_ttl: DEFAULT_LEASE_TTL,
            health_rule: HealthRule::Quorum,
            grace: DEFAULT_LEASE_TTL * 2,
            probe_source: None,
            auth: None,
            tls: EtcdTls::default(),
            freeze: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The host name, for the default member name.
fn host_name() -> Option<String> {
    let n = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let n = n.trim();
    (!n.is_empty()).then(|| n.to_owned())
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Validates the `[cluster]` table; problems are reported to `map` (file, line, column,
/// key). Relative file names are taken against `base`.
pub fn validate(
    raw: &RawClusterConfig,
    base: &Path,
    map: &mut SourceMap<'_>,
) -> Option<ClusterConfig> {
    let at = |s: &std::ops::Range<usize>| s.start;
    let mut endpoints = Vec::new();
    if raw.etcd.get_ref().is_empty() {
        map.report(
            at(&raw.etcd.span()),
            "cluster.etcd",
            "list at least one endpoint, like \"http://127.0.0.1:2379\"",
        );
    }
    for (i, e) in raw.etcd.get_ref().iter().enumerate() {
        if e.starts_with("http://") || e.starts_with("https://") {
            endpoints.push(e.clone());
        } else {
            map.report(
                at(&raw.etcd.span()),
                format!("cluster.etcd[{i}]"),
                format!("{e:?} is not an http:// or https:// URL"),
            );
        }
    }
    let name = match &raw.name {
        Some(n) if valid_name(n.get_ref()) => n.get_ref().clone(),
        Some(n) => {
            map.report(
                at(&n.span()),
                "cluster.name",
                "must be 1 to 64 letters, digits, '-', '_' or '.'",
            );
            String::new()
        }
        None => match host_name().filter(|h| valid_name(h)) {
            Some(h) => h,
            None => {
                map.report(
                    at(&raw.etcd.span()),
                    "cluster.name",
                    "no usable host name: set name",
                );
                String::new()
            }
        },
    };
    let prefix = match &raw.prefix {
        Some(p) => {
            let t = p.get_ref().trim_end_matches('/');
            if !t.starts_with('/') || t.len() < 2 {
                map.report(
                    at(&p.span()),
                    "cluster.prefix",
                    "must start with '/' and name something, like \"/roundel\"",
                );
            }
            t.to_owned()
        }
        None => DEFAULT_PREFIX.to_owned(),
    };
    let observers = match &raw.observers {
        Some(o) if (1..=MAX_OBSERVERS as i64).contains(o.get_ref()) => *o.get_ref() as usize,
        Some(o) => {
            map.report(
                at(&o.span()),
                "cluster.observers",
                format!("must be 1..={MAX_OBSERVERS}"),
            );
            DEFAULT_OBSERVERS
        }
        None => DEFAULT_OBSERVERS,
    };
    let mut duration = |v: &Option<Spanned<String>>, key: &str, default: Duration| match v {
        Some(d) => match parse_duration(d.get_ref()) {
            Ok(x) => Some((x, d.span().start)),
            Err(e) => {
                map.report(d.span().start, key, e);
                Some((default, d.span().start))
            }
        },
        None => None,
    };
    let lease = duration(&raw.lease_ttl, "cluster.lease_ttl", DEFAULT_LEASE_TTL);
    let grace = duration(&raw.grace, "cluster.grace", DEFAULT_LEASE_TTL * 2);
    let lease_ttl = match lease {
        Some((d, pos)) => {
            if d < MIN_LEASE_TTL || d > MAX_LEASE_TTL || d.subsec_nanos() != 0 {
                map.report(
                    pos,
                    "cluster.lease_ttl",
                    format!(
                        "must be whole seconds from {}s to {}s (etcd counts leases in seconds)",
                        MIN_LEASE_TTL.as_secs(),
                        MAX_LEASE_TTL.as_secs()
                    ),
                );
            }
            d
        }
        None => DEFAULT_LEASE_TTL,
    };
    let grace = match grace {
        Some((d, pos)) => {
            if d < lease_ttl {
                map.report(pos, "cluster.grace", "must be at least lease_ttl");
            }
            d
        }
        None => lease_ttl * 2,
    };
    let health_rule = match &raw.health_rule {
        Some(r) => match r.get_ref().as_str() {
            "quorum" => HealthRule::Quorum,
            "any-up" => HealthRule::AnyUp,
            "all-up" => HealthRule::AllUp,
            other => {
                map.report(
                    at(&r.span()),
                    "cluster.health_rule",
                    format!("{other:?}: use quorum, any-up or all-up"),
                );
                HealthRule::Quorum
            }
        },
        None => HealthRule::Quorum,
    };
    let probe_source = match &raw.probe_source {
        Some(s) => match s.get_ref().parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                map.report(
                    at(&s.span()),
                    "cluster.probe_source",
                    format!("{:?} is not an IP address", s.get_ref()),
                );
                None
            }
        },
        None => None,
    };
    let mut read = |f: &Spanned<PathBuf>, key: &str| -> Option<Vec<u8>> {
        let path = base.join(f.get_ref());
        match std::fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) => {
                map.report(
                    f.span().start,
                    key,
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        }
    };
    let password = match (&raw.password, &raw.password_file) {
        (Some(p), None) => Some(p.get_ref().clone()),
        (None, Some(f)) => {
            read(f, "cluster.password_file").map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        }
        (Some(_), Some(_)) | (None, None) => None,
    };
    let tls = EtcdTls {
        ca: raw
            .ca_file
            .as_ref()
            .and_then(|f| read(f, "cluster.ca_file")),
        identity: match (&raw.cert_file, &raw.key_file) {
            (Some(c), Some(k)) => read(c, "cluster.cert_file").zip(read(k, "cluster.key_file")),
            _ => None,
        },
    };
    if let (Some(_), Some(f)) = (&raw.password, &raw.password_file) {
        map.report(
            f.span().start,
            "cluster.password_file",
            "set either password or password_file, not both",
        );
    }
    if raw.cert_file.is_some() != raw.key_file.is_some() {
        let pos = raw.cert_file.as_ref().map_or_else(
            || raw.key_file.as_ref().map_or(0, |k| k.span().start),
            |c| c.span().start,
        );
        map.report(
            pos,
            "cluster.cert_file",
            "cert_file and key_file go together",
        );
    }
    let auth = match (&raw.user, password) {
        (Some(u), Some(p)) => Some((u.get_ref().clone(), p)),
        (None, None) => None,
        (Some(u), None) => {
            map.report(
                u.span().start,
                "cluster.user",
                "needs password or password_file",
            );
            None
        }
        (None, Some(_)) => {
            map.report(at(&raw.etcd.span()), "cluster.password", "needs user");
            None
        }
    };
    if map.has_errors() {
        return None;
    }
    Some(ClusterConfig {
        endpoints,
        name,
        prefix,
        observers,
        lease_ttl,
        health_rule,
        grace,
        probe_source,
        auth,
        tls,
        freeze: Arc::new(AtomicBool::new(false)),
    })
}
