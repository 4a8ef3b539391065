//! The `[limits]` table of the server configuration file.
//!
//! ```toml
//! [limits]
//! tcp_clients = 20000                 # default: half the descriptor limit, within budget
//! tcp_clients_per_address = 32
//! tcp_idle_timeout = "10s"
//! tcp_io_timeout = "1s"
//! tcp_queries_per_connection = 1000
//! admin_connections = 64
//! admin_header_timeout = "5s"
//! admin_idle_timeout = "30s"
//! admin_body_limit = 65536
//! udp_receive_buffer = 1048576        # bytes per UDP worker socket; 0: the system's default
//! ```

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Limits, MAX_UDP_RECEIVE_BUFFER, MIN_UDP_RECEIVE_BUFFER, UdpReceiveBuffer};
use crate::pool::duration::parse_duration;
use crate::source::SourceMap;

/// Largest accepted timeout: a longer one is a mistake, not a policy.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The `[limits]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// DNS-over-TCP connections at once.
    pub tcp_clients: Option<Spanned<u32>>,
    /// DNS-over-TCP connections per client address.
    pub tcp_clients_per_address: Option<Spanned<u32>>,
    /// Idle timeout of a DNS-over-TCP connection.
    pub tcp_idle_timeout: Option<Spanned<String>>,
    /// I/O timeout of a DNS-over-TCP connection.
    pub tcp_io_timeout: Option<Spanned<String>>,
    /// Queries answered per connection.
    pub tcp_queries_per_connection: Option<Spanned<u32>>,
    /// Admin connections at once.
    pub admin_connections: Option<Spanned<u32>>,
    /// Header timeout of the admin listener.
    pub admin_header_timeout: Option<Spanned<String>>,
    /// Idle timeout of an admin connection.
    pub admin_idle_timeout: Option<Spanned<String>>,
    /// Largest admin request body, bytes.
    pub admin_body_limit: Option<Spanned<u32>>,
    /// Receive buffer of each UDP worker's socket, bytes.
    pub udp_receive_buffer: Option<Spanned<u32>>,
}

fn count(map: &mut SourceMap, v: &Option<Spanned<u32>>, key: &str, default: u32) -> u32 {
    match v {
        Some(s) if *s.get_ref() == 0 => {
            map.report(
                s.span().start,
                format!("limits.{key}"),
                "must be at least 1",
            );
            default
        }
        Some(s) => *s.get_ref(),
        None => default,
    }
}

fn timeout(
    map: &mut SourceMap,
    v: &Option<Spanned<String>>,
    key: &str,
    default: Duration,
) -> Duration {
    let Some(s) = v else { return default };
    match parse_duration(s.get_ref()) {
        Ok(d) if d.is_zero() => {
            map.report(
                s.span().start,
                format!("limits.{key}"),
                "must be more than zero",
            );
            default
        }
        Ok(d) if d > MAX_TIMEOUT => {
            map.report(
                s.span().start,
                format!("limits.{key}"),
                format!("{} is more than the maximum, 1h", s.get_ref()),
            );
            default
        }
        Ok(d) => d,
        Err(e) => {
            map.report(s.span().start, format!("limits.{key}"), e);
            default
        }
    }
}

/// Validates the table; errors go into `map` with their position and key.
pub fn validate(raw: &RawLimits, map: &mut SourceMap) -> Limits {
    let d = Limits::default();
    let tcp_clients = raw
        .tcp_clients
        .as_ref()
        .map(|_| count(map, &raw.tcp_clients, "tcp_clients", 1));
    let limits = Limits {
        tcp_clients,
        tcp_clients_per_address: count(
            map,
            &raw.tcp_clients_per_address,
            "tcp_clients_per_address",
            d.tcp_clients_per_address,
        ),
        tcp_idle_timeout: timeout(
            map,
            &raw.tcp_idle_timeout,
            "tcp_idle_timeout",
            d.tcp_idle_timeout,
        ),
        tcp_io_timeout: timeout(map, &raw.tcp_io_timeout, "tcp_io_timeout", d.tcp_io_timeout),
        tcp_queries_per_connection: count(
            map,
            &raw.tcp_queries_per_connection,
            "tcp_queries_per_connection",
            d.tcp_queries_per_connection,
        ),
        admin_connections: count(
            map,
            &raw.admin_connections,
            "admin_connections",
            d.admin_connections,
        ),
        admin_header_timeout: timeout(
            map,
            &raw.admin_header_timeout,
            "admin_header_timeout",
            d.admin_header_timeout,
        ),
        admin_idle_timeout: timeout(
            map,
            &raw.admin_idle_timeout,
            "admin_idle_timeout",
            d.admin_idle_timeout,
        ),
        admin_body_limit: match &raw.admin_body_limit {
            Some(s) if *s.get_ref() < 1024 => {
                map.report(
                    s.span().start,
                    "limits.admin_body_limit",
                    "must be at least 1024 (bytes)",
                );
                d.admin_body_limit
            }
            Some(s) => *s.get_ref() as usize,
            None => d.admin_body_limit,
        },
        udp_receive_buffer: match &raw.udp_receive_buffer {
            Some(s) if *s.get_ref() == 0 => UdpReceiveBuffer::System,
            Some(s) if !(MIN_UDP_RECEIVE_BUFFER..=MAX_UDP_RECEIVE_BUFFER).contains(s.get_ref()) => {
                map.report(
                    s.span().start,
                    "limits.udp_receive_buffer",
                    format!(
                        "{} is outside {MIN_UDP_RECEIVE_BUFFER} to {MAX_UDP_RECEIVE_BUFFER} (bytes; 0 keeps the system's default)",
                        s.get_ref()
                    ),
                );
                d.udp_receive_buffer
            }
            Some(s) => UdpReceiveBuffer::Bytes {
                bytes: *s.get_ref(),
                configured: true,
            },
            None => d.udp_receive_buffer,
        },
    };
    if let (Some(c), Some(p)) = (limits.tcp_clients, &raw.tcp_clients_per_address)
        && *p.get_ref() > c
    {
        map.report(
            p.span().start,
            "limits.tcp_clients_per_address",
            format!("{} is more than tcp_clients ({c})", p.get_ref()),
        );
    }
    limits
}
