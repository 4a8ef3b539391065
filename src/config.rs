//! The optional server configuration file (`roundel serve --config FILE`).
//!
//! Everything in it can also be given on the command line, which wins. Unknown keys are
//! errors, reported with file, line and column like zone file errors.
//!
//! ```toml
//! listen = ["127.0.0.1:5353", "[::1]:5353"]
//! zones = "zones"
//! udp_threads = 2
//! [log]
//! format = "text"      # or "json"
//! filter = "info"      # tracing filter directives
//! queries = false      # one line per query (also --query-log, or the admin API)
//! [admin]
//! enabled = true                 # the default
//! listen = "127.0.0.1:8053"      # admin API, status page, /metrics
//! token_file = "admin.token"     # or token = "..."; or ROUNDEL_ADMIN_TOKEN
//! state_dir = "/var/lib/roundel" # where admin overrides are kept
//! [limits]                       # see crate::limits::config
//! tcp_clients_per_address = 32
//! tcp_idle_timeout = "10s"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

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
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The admin listener.
    #[serde(default)]
    pub admin: RawAdminConfig,
    /// Connection, timeout and size limits.
    #[serde(default)]
    pub limits: crate::limits::config::RawLimits,
}

/// A configuration file, validated.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Addresses to serve DNS on (empty: none configured).
    pub listen: Vec<SocketAddr>,
    /// Zone directory, if configured (made absolute against the file's directory).
    pub zones: Option<PathBuf>,
    /// UDP worker threads per address.
    pub udp_threads: Option<usize>,
    /// Logging.
    pub log: LogConfig,
    /// The admin listener.
    pub admin: AdminConfig,
    /// Connection, timeout and size limits.
    pub limits: crate::limits::Limits,
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, Vec<ZoneError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut map = SourceMap::new(path, "");
        map.report_file(format!("cannot read: {e}"));
        map.into_errors()
    })?;
    let mut map = SourceMap::new(path, &text);
    let raw: ServerConfig = match toml::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            map.report(
                e.span().map_or(0, |s| s.start),
                "",
                e.message().trim().to_owned(),
            );
            return Err(map.into_errors());
        }
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
    let limits = crate::limits::config::validate(&raw.limits, &mut map);
    if map.has_errors() {
        return Err(map.into_errors());
    }
    Ok(Config {
        limits,
        listen,
        zones: raw.zones.map(|z| base.join(z)),
        udp_threads: raw.udp_threads,
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

        let e = load_text("unknown", "[admin]\ntokn = \"a\"\n").unwrap_err();
        assert_eq!(e[0].line, 2, "{}", e[0]);
        assert!(e[0].reason.contains("unknown field"), "{}", e[0]);
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
        let e = load_text("limits-unknown", "[limits]\ntcp_client = 1\n").unwrap_err();
        assert_eq!(e[0].line, 2, "{}", e[0]);
        assert!(e[0].reason.contains("unknown field"), "{}", e[0]);
    }
}
