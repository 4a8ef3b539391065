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
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::zone::error::{SourceMap, ZoneError};

/// Address served when none is configured: loopback and an unprivileged port, so that a
/// first `roundel serve` needs no privileges and exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
/// Zone directory when none is configured, relative to the working directory.
pub const DEFAULT_ZONES_DIR: &str = "zones";
/// Log filter when none is configured. hickory-server logs every response at INFO,
/// which costs a fifth of the throughput, so its crates are held at WARN.
pub const DEFAULT_LOG_FILTER: &str = "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn";

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
    if map.has_errors() {
        return Err(map.into_errors());
    }
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(Config {
        listen,
        zones: raw.zones.map(|z| base.join(z)),
        udp_threads: raw.udp_threads,
        log: raw.log,
    })
}
