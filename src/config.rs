//! The optional server configuration file (`roundel serve --config FILE`).
//!
//! Everything in it can also be given on the command line, which wins. Unknown keys are
//! errors, reported with file, line and column like zone file errors.
//!
//! ```toml
//! listen = ["127.0.0.1:5353", "[::1]:5353"]
//! zones = "zones"
//! udp_threads = 2
//! tcp_threads = 1
//! [log]
//! format = "text"      # or "json"
//! filter = "info"      # tracing filter directives
//! queries = false      # one line per query (also --query-log, or the admin API)
//! [admin]
//! enabled = true                 # the default
//! listen = "127.0.0.1:8053"      # admin API, status page, /metrics
//! token_file = "admin.token"     # or token = "..."; or ROUNDEL_ADMIN_TOKEN
//! state_dir = "/var/lib/roundel" # where admin overrides are kept
//! read_token = "..."             # reads (status, API, /metrics) need a token
//! require_token_for_reads = true # or: reads need the admin token (or the read token)
//! [cluster]                      # optional: see docs/cluster.md
//! etcd = ["http://127.0.0.1:2379"]
//! [rrl]                          # response rate limiting (UDP), on by default
//! responses_per_second = 200
//! slip = 2
//! exempt = ["192.0.2.0/24"]
//! [cookies]                      # DNS cookies, on by default
//! secret_file = "cookie.secret"  # shared by the servers of an NS set
//! [limits]                       # see crate::limits::config
//! tcp_clients_per_address = 32
//! tcp_idle_timeout = "10s"
//! [health]
//! max_probes = 4096              # distinct check targets over all zones
//! max_probes_in_flight = 256     # checks running at once
//! ```
//!
//! The `[rrl]` and `[cookies]` keys and defaults are in [`crate::dns::rrl_config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::dns::rrl_config::{CookieConfig, RawCookieConfig, RawRrlConfig, RrlConfig};
use crate::source::{SourceMap, ZoneError};

/// Address served when none is configured: loopback and an unprivileged port, so that a
/// first `roundel serve` needs no privileges and exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
/// Zone directory when none is configured, relative to the working directory.
pub const DEFAULT_ZONES_DIR: &str = "zones";
/// Log filter when none is configured. hickory's crates are held at WARN: they log
/// routine protocol events at INFO and DEBUG.
pub const DEFAULT_LOG_FILTER: &str = "info,hickory_proto=warn";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The `[log]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Output format.
    pub format: Option<LogFormat>,
    /// Filter directives (tracing-subscriber `EnvFilter` syntax).
    pub filter: Option<String>,
    /// Log every query (one line at INFO, target `roundel::query`).
    pub queries: Option<bool>,
}

/// The `[admin]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminConfig {
    /// Start the admin listener (default true).
    pub enabled: Option<bool>,
    /// Address of the admin listener.
    pub listen: Option<Spanned<String>>,
    /// Bearer token for state-changing calls.
    pub token: Option<Spanned<String>>,
    /// File holding the token (relative to the configuration file).
    pub token_file: Option<Spanned<PathBuf>>,
    /// Directory of the admin state file (relative to the configuration file).
    pub state_dir: Option<PathBuf>,
    /// A token that allows reads only; setting it makes reads need a token.
    pub read_token: Option<Spanned<String>>,
    /// Reads (status page, API reads, /metrics) need the read or the admin token.
    pub require_token_for_reads: Option<bool>,
}

/// The `[admin]` table, validated.
#[derive(Debug, Clone, Default)]
pub struct AdminConfig {
    /// Start the admin listener (`None`: not said, the default applies).
    pub enabled: Option<bool>,
    /// Address of the admin listener, if configured.
    pub listen: Option<SocketAddr>,
    /// The token, from `token` or read from `token_file`.
    pub token: Option<crate::admin::Token>,
    /// Directory of the admin state file, made absolute against the file's directory.
    pub state_dir: Option<PathBuf>,
    /// Who may read.
    pub read_access: crate::admin::read_auth::ReadAccess,
}

/// The server configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Addresses to serve DNS on, UDP and TCP.
    #[serde(default)]
    pub listen: Vec<Spanned<String>>,
    /// Zone directory, relative to the config file's directory.
    pub zones: Option<PathBuf>,
    /// UDP worker threads per address.
    pub udp_threads: Option<usize>,
    /// DNS-over-TCP threads.
    pub tcp_threads: Option<usize>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The admin listener.
    #[serde(default)]
    pub admin: RawAdminConfig,
    /// Cluster mode (etcd); absent: a single instance.
    pub cluster: Option<crate::cluster::config::RawClusterConfig>,
    /// Response rate limiting.
    #[serde(default)]
    pub rrl: RawRrlConfig,
    /// DNS cookies.
    #[serde(default)]
    pub cookies: RawCookieConfig,
    /// Connection, timeout and size limits.
    #[serde(default)]
    pub limits: crate::limits::config::RawLimits,
    /// Health checking caps.
    #[serde(default)]
    pub health: RawHealthConfig,
}

/// The `[health]` table as written: caps on health checking (`crate::pool::limits`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthConfig {
    /// Most probes (distinct check target and check) over all zones.
    pub max_probes: Option<Spanned<i64>>,
    /// Most checks in flight at once.
    pub max_probes_in_flight: Option<Spanned<i64>>,
}

/// Largest value accepted for `[health] max_probes` and `max_probes_in_flight`.
pub const MAX_HEALTH_CAP: i64 = 1_000_000;

/// A configuration file, validated.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Addresses to serve DNS on (empty: none configured).
    pub listen: Vec<SocketAddr>,
    /// Zone directory, if configured (made absolute against the file's directory).
    pub zones: Option<PathBuf>,
    /// UDP worker threads per address.
    pub udp_threads: Option<usize>,
    /// DNS-over-TCP threads.
    pub tcp_threads: Option<usize>,
    /// Logging.
    pub log: LogConfig,
    /// The admin listener.
    pub admin: AdminConfig,
    /// Cluster mode, if configured.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// Response rate limiting (defaults when the table is absent).
    pub rrl: RrlConfig,
    /// DNS cookies (defaults when the table is absent).
    pub cookies: CookieConfig,
    /// Connection, timeout and size limits.
    pub limits: crate::limits::Limits,
    /// Caps on health checking (defaults where not configured).
    pub probe_limits: crate::pool::limits::ProbeLimits,
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, Vec<ZoneError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut map = SourceMap::new(path, "");
        map.report_file(format!("cannot read: {e}"));
        map.into_errors()
    })?;
    let mut map = SourceMap::new(path, &text);
    // Every unknown key is reported (with the nearest valid one), and the rest of the file
    // is still checked.
    let (raw, problems) = crate::source::unknown_keys::parse::<ServerConfig>(&text);
    for p in problems {
        map.report(p.at, &p.key, p.reason);
    }
    let Some(raw) = raw else {
        return Err(map.into_errors());
    };
    let mut listen = Vec::new();
    for (i, a) in raw.listen.iter().enumerate() {
        match a.get_ref().parse::<SocketAddr>() {
            Ok(addr) => listen.push(addr),
            Err(_) => map.report(
                a.span().start,
                format!("listen[{i}]"),
                format!(
                    "not an address:port: {:?} (IPv6 as \"[::1]:53\")",
                    a.get_ref()
                ),
            ),
        }
    }
    if raw.udp_threads == Some(0) {
        map.report(0, "udp_threads", "must be at least 1");
    }
    if raw.tcp_threads == Some(0) {
        map.report(0, "tcp_threads", "must be at least 1");
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut admin = AdminConfig {
        enabled: raw.admin.enabled,
        state_dir: raw.admin.state_dir.as_ref().map(|d| base.join(d)),
        ..AdminConfig::default()
    };
    if let Some(l) = &raw.admin.listen {
        match l.get_ref().parse::<SocketAddr>() {
            Ok(addr) => admin.listen = Some(addr),
            Err(_) => map.report(
                l.span().start,
                "admin.listen",
                format!(
                    "not an address:port: {:?} (like \"127.0.0.1:8053\")",
                    l.get_ref()
                ),
            ),
        }
    }
    match (&raw.admin.token, &raw.admin.token_file) {
        (Some(_), Some(f)) => map.report(
            f.span().start,
            "admin.token_file",
            "set either token or token_file, not both",
        ),
        (Some(t), None) => match crate::admin::Token::new(t.get_ref()) {
            Some(t) => admin.token = Some(t),
            None => map.report(t.span().start, "admin.token", "must not be empty"),
        },
        (None, Some(f)) => {
            let file = base.join(f.get_ref());
            match std::fs::read_to_string(&file) {
                Ok(text) => match crate::admin::Token::new(&text) {
                    Some(t) => admin.token = Some(t),
                    None => map.report(
                        f.span().start,
                        "admin.token_file",
                        format!("{} is empty", file.display()),
                    ),
                },
                Err(e) => map.report(
                    f.span().start,
                    "admin.token_file",
                    format!("cannot read {}: {e}", file.display()),
                ),
            }
        }
        (None, None) => {}
    }
    let cluster = raw
        .cluster
        .as_ref()
        .and_then(|c| crate::cluster::config::validate(c, base, &mut map));
    let rrl = raw.rrl.validate(&mut map);
    let cookies = raw.cookies.validate(&mut map, base);
    let limits = crate::limits::config::validate(&raw.limits, &mut map);
    admin.read_access.required = raw.admin.require_token_for_reads == Some(true);
    if let Some(t) = &raw.admin.read_token {
        match crate::admin::Token::new(t.get_ref()) {
            Some(t) => admin.read_access.token = Some(t),
            None => map.report(t.span().start, "admin.read_token", "must not be empty"),
        }
    }
    let mut probe_limits = crate::pool::limits::ProbeLimits::default();
    for (value, key, slot) in [
        (
            &raw.health.max_probes,
            "health.max_probes",
            &mut probe_limits.max_probes,
        ),
        (
            &raw.health.max_probes_in_flight,
            "health.max_probes_in_flight",
            &mut probe_limits.max_in_flight,
        ),
    ] {
        if let Some(v) = value {
            match usize::try_from(*v.get_ref()) {
                Ok(n) if (1..=MAX_HEALTH_CAP).contains(v.get_ref()) => *slot = n,
                _ => map.report(
                    v.span().start,
                    key,
                    format!("must be from 1 to {MAX_HEALTH_CAP}, not {}", v.get_ref()),
                ),
            }
        }
    }
    if map.has_errors() {
        return Err(map.into_errors());
    }
    Ok(Config {
        cluster,
        rrl,
        cookies,
        limits,
        probe_limits,
        listen,
        zones: raw.zones.map(|z| base.join(z)),
        udp_threads: raw.udp_threads,
        tcp_threads: raw.tcp_threads,
        log: raw.log,
        admin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(name: &str, text: &str) -> Result<Config, Vec<ZoneError>> {
        let dir =
            std::env::temp_dir().join(format!("roundel-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("roundel.toml");
        std::fs::write(&path, text).unwrap();
        let r = load(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    #[test]
    fn the_contrib_configuration_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/roundel.toml");
        let c = load(&path).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.admin.listen, Some("127.0.0.1:8053".parse().unwrap()));
        assert_eq!(c.log.queries, Some(false));
    }

    #[test]
    fn thread_counts_are_at_least_one() {
        let c = load_text("threads", "udp_threads = 3\ntcp_threads = 2\n").unwrap();
        assert_eq!((c.udp_threads, c.tcp_threads), (Some(3), Some(2)));
        let e = load_text("zero", "udp_threads = 0\ntcp_threads = 0\n").unwrap_err();
        for key in ["udp_threads", "tcp_threads"] {
            assert!(
                e.iter()
                    .any(|e| e.key == key && e.reason.contains("at least 1")),
                "{key}: {e:?}"
            );
        }
    }

    #[test]
    fn admin_table_is_checked_with_positions() {
        let c = load_text(
            "ok",
            "[admin]\nlisten = \"127.0.0.1:9000\"\ntoken = \" abc \"\nstate_dir = \"state\"\n",
        )
        .unwrap();
        assert_eq!(c.admin.token, crate::admin::Token::new("abc"));
        assert!(c.admin.state_dir.unwrap().ends_with("state"));

        let e = load_text("bad", "[admin]\nlisten = \"localhost\"\n").unwrap_err();
        assert_eq!((e[0].line, e[0].key.as_str()), (2, "admin.listen"));

        let e = load_text("both", "[admin]\ntoken = \"a\"\ntoken_file = \"t\"\n").unwrap_err();
        assert_eq!((e[0].line, e[0].key.as_str()), (3, "admin.token_file"));

        let e = load_text("missing", "[admin]\ntoken_file = \"nope\"\n").unwrap_err();
        assert!(e[0].reason.contains("cannot read"), "{}", e[0]);

        let e = load_text("unknown", "[admin]\ntokn = \"a\"\nlisten = \"nowhere\"\n").unwrap_err();
        assert_eq!(
            (e[0].line, e[0].key.as_str()),
            (2, "admin.tokn"),
            "{}",
            e[0]
        );
        assert!(e[0].reason.contains("did you mean `token`?"), "{}", e[0]);
        // The unknown key hides nothing: the bad address is reported too.
        assert_eq!(
            (e[1].line, e[1].key.as_str()),
            (3, "admin.listen"),
            "{}",
            e[1]
        );
        let c = load_text(
            "cluster",
            "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nname = \"ns1\"\nlease_ttl = \"3s\"\nhealth_rule = \"any-up\"\nprobe_source = \"127.0.0.2\"\n",
        )
        .unwrap();
        let cl = c.cluster.unwrap();
        assert_eq!(
            (cl.name.as_str(), cl.observers, cl.prefix.as_str()),
            ("ns1", 3, "/roundel")
        );
        assert_eq!(
            cl.grace,
            std::time::Duration::from_secs(6),
            "default grace: 2 x lease_ttl"
        );
        assert_eq!(cl.health_rule, crate::cluster::HealthRule::AnyUp);
        assert!(load_text("nocluster", "").unwrap().cluster.is_none());
        let e = load_text(
            "badcluster",
            "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nname = \"a\"\nlease_ttl = \"1500ms\"\n",
        )
        .unwrap_err();
        assert_eq!(
            (e[0].line, e[0].key.as_str()),
            (4, "cluster.lease_ttl"),
            "{}",
            e[0]
        );
        let e = load_text(
            "rule",
            "[cluster]\netcd = [\"http://x:1\"]\nname = \"a\"\nhealth_rule = \"most\"\n",
        )
        .unwrap_err();
        assert_eq!(
            (e[0].line, e[0].key.as_str()),
            (4, "cluster.health_rule"),
            "{}",
            e[0]
        );
        let e = load_text("cunknown", "[cluster]\netcd = []\nttl = 3\n").unwrap_err();
        assert!(
            e.iter()
                .any(|x| x.key == "cluster.ttl" && x.reason.contains("unknown key `ttl`")),
            "{e:?}"
        );
    }

    #[test]
    fn rrl_and_cookies_tables_are_checked_with_positions() {
        let c = load_text("rrl-none", "").unwrap();
        assert_eq!(c.rrl, RrlConfig::default());
        assert!(c.rrl.enabled && c.cookies.enabled && c.cookies.secret_file.is_none());

        let c = load_text(
            "rrl-ok",
            "[rrl]\nresponses_per_second = 50\nslip = 0\ntable_size = 5000\nexempt = [\"192.0.2.9/24\", \"::1\"]\n[cookies]\nenabled = false\n",
        )
        .unwrap();
        assert_eq!((c.rrl.responses_per_second, c.rrl.slip), (50, 0));
        assert_eq!(c.rrl.table_size, 8192, "rounded up to a power of two");
        assert_eq!(c.rrl.exempt.len(), 2);
        assert!(!c.cookies.enabled);

        let e = load_text(
            "rrl-bad",
            "[rrl]\nslip = 11\nipv4_prefix = 40\nexempt = [\"192.0.2.0/24\", \"nope\"]\nresponses_per_second = 0\n",
        )
        .unwrap_err();
        let at = |key: &str| e.iter().find(|e| e.key == key).map(|e| e.line);
        assert_eq!(at("rrl.slip"), Some(2));
        assert_eq!(at("rrl.ipv4_prefix"), Some(3));
        assert_eq!(at("rrl.exempt[1]"), Some(4));
        assert_eq!(at("rrl.responses_per_second"), Some(5));
        assert!(e.iter().any(|e| e.reason.contains("0 to 10")), "{e:?}");

        let e = load_text("rrl-unknown", "[rrl]\nrate = 5\n").unwrap_err();
        assert_eq!(e[0].line, 2, "{}", e[0]);
        assert!(e[0].reason.contains("unknown key `rate`"), "{}", e[0]);
        assert_eq!(e[0].key, "rrl.rate", "{}", e[0]);

        let e = load_text("cookie-missing", "[cookies]\nsecret_file = \"nope\"\n").unwrap_err();
        assert_eq!((e[0].line, e[0].key.as_str()), (2, "cookies.secret_file"));
        assert!(e[0].reason.contains("cannot read"), "{}", e[0]);
    }

    #[test]
    fn a_bad_secret_file_is_reported_with_its_own_line() {
        let dir =
            std::env::temp_dir().join(format!("roundel-config-{}-secret", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cookie.secret"), "# current\n0123\n").unwrap();
        let path = dir.join("roundel.toml");
        std::fs::write(&path, "[cookies]\nsecret_file = \"cookie.secret\"\n").unwrap();
        let e = load(&path).unwrap_err();
        std::fs::write(
            dir.join("cookie.secret"),
            "0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        let ok = load(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((e[0].line, e[0].key.as_str()), (2, "cookies.secret_file"));
        assert!(
            e[0].reason.contains("cookie.secret:2: a secret is 32"),
            "{}",
            e[0]
        );
        assert_eq!(ok.cookies.secret_file, Some(dir.join("cookie.secret")));
    }

    #[test]
    fn limits_table_is_checked_with_positions() {
        let c = load_text(
            "limits-ok",
            "[limits]\ntcp_clients = 200\ntcp_idle_timeout = \"2s\"\nadmin_body_limit = 4096\n",
        )
        .unwrap();
        assert_eq!(c.limits.tcp_clients, Some(200));
        assert_eq!(c.limits.tcp_idle_timeout, std::time::Duration::from_secs(2));
        assert_eq!(c.limits.admin_body_limit, 4096);
        assert_eq!(
            c.limits.tcp_io_timeout,
            crate::limits::DEFAULT_TCP_IO_TIMEOUT
        );

        let e = load_text("limits-zero", "[limits]\n\ntcp_clients = 0\n").unwrap_err();
        assert_eq!((e[0].line, e[0].key.as_str()), (3, "limits.tcp_clients"));
        let e = load_text("limits-dur", "[limits]\ntcp_io_timeout = \"5\"\n").unwrap_err();
        assert_eq!((e[0].line, e[0].key.as_str()), (2, "limits.tcp_io_timeout"));
        let e = load_text(
            "limits-per",
            "[limits]\ntcp_clients = 10\ntcp_clients_per_address = 20\n",
        )
        .unwrap_err();
        assert_eq!(
            (e[0].line, e[0].key.as_str()),
            (3, "limits.tcp_clients_per_address")
        );
        use crate::limits::UdpReceiveBuffer;
        assert_eq!(
            c.limits.udp_receive_buffer,
            UdpReceiveBuffer::Bytes {
                bytes: crate::limits::DEFAULT_UDP_RECEIVE_BUFFER,
                configured: false
            }
        );
        let c = load_text("limits-rcvbuf", "[limits]\nudp_receive_buffer = 4194304\n").unwrap();
        assert_eq!(
            c.limits.udp_receive_buffer,
            UdpReceiveBuffer::Bytes {
                bytes: 4 << 20,
                configured: true
            }
        );
        let c = load_text("limits-rcvbuf-0", "[limits]\nudp_receive_buffer = 0\n").unwrap();
        assert_eq!(c.limits.udp_receive_buffer, UdpReceiveBuffer::System);
        for bad in ["4096", "1073741824"] {
            let e = load_text(
                "limits-rcvbuf-range",
                &format!("[limits]\n\nudp_receive_buffer = {bad}\n"),
            )
            .unwrap_err();
            assert_eq!(
                (e[0].line, e[0].key.as_str()),
                (3, "limits.udp_receive_buffer")
            );
            assert!(
                e[0].reason.contains("outside 65536 to 268435456"),
                "{}",
                e[0]
            );
        }
        let e = load_text("limits-unknown", "[limits]\ntcp_client = 1\n").unwrap_err();
        assert_eq!(e[0].line, 2, "{}", e[0]);
        assert!(
            e[0].reason
                .contains("unknown key `tcp_client`; did you mean `tcp_clients`?"),
            "{}",
            e[0]
        );
    }
}
