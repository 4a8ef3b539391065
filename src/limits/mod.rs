//! Budgets: how many descriptors, connections and bytes each listener may take, so that no
//! client load can starve another listener or the health probes.
//!
//! The process has `N` descriptors (the soft `RLIMIT_NOFILE`, raised to the hard limit at
//! start by [`nofile::raise`]). They are split up front ([`Budget::derive`]):
//!
//! ```text
//! N = FIXED_DESCRIPTORS            listening sockets, runtime, watcher, files, logs
//!   + probes  = max(N / PROBE_RESERVE_DIVISOR, MIN_PROBE_RESERVE)
//!             = checks in flight (max_probes_in_flight)
//!             + kept check connections (reuse_connection: the rest of the reserve)
//!   + admin   = admin_connections  (default DEFAULT_ADMIN_CONNECTIONS)
//!   + tcp     = tcp_clients        (default: what is left, at most N / 2, as Knot)
//!             + EVICTIONS_IN_FLIGHT (idle connections evicted at the cap, still closing)
//! ```
//!
//! Client connections (DNS over TCP, admin HTTP) are capped at their share (each
//! listener keeps a [`slots::SlotTable`], which evicts the longest idle connection at the
//! cap); the probe
//! share is never handed to a client, so health checking keeps its descriptors under any
//! connection flood. A configured cap larger than its share is lowered to it (with a
//! WARN) rather than letting the process run out.
//!
//! The settings come from the `[limits]` table of the server configuration
//! ([`config::RawLimits`]).

pub mod accept;
pub mod config;
pub mod counters;
pub mod nofile;
pub mod slots;

use std::time::Duration;

/// Descriptors kept for everything that is not a client connection or a probe: the UDP,
/// TCP and admin listening sockets, the runtime's epoll and event descriptors, the zone
/// watcher, zone and state files during a reload, standard streams.
pub const FIXED_DESCRIPTORS: u64 = 64;
/// A quarter of the descriptors is reserved for health probes: one descriptor per check in
/// flight, and the rest for plain-HTTP check connections kept between checks
/// (`reuse_connection = true`, [`Budget::kept_connections`]); without reuse probes keep
/// no connection.
pub const PROBE_RESERVE_DIVISOR: u64 = 4;
/// The probe reserve is at least this many descriptors.
pub const MIN_PROBE_RESERVE: u64 = 32;
/// DNS-over-TCP connections evicted at the cap but not yet closed by their task, at most
/// (see [`crate::dns::tcp_conns`]); the TCP share of the budget sets them aside.
pub const EVICTIONS_IN_FLIGHT: usize = 16;
/// Fewer TCP clients than this are not worth serving; below it the limit is too low and
/// Roundel says so.
pub const MIN_TCP_CLIENTS: u64 = 8;

/// Default cap on DNS-over-TCP connections from one client address (IPv4 /32, IPv6 /64).
/// NSD and Knot have none; one resolver rarely needs more than a few.
pub const DEFAULT_TCP_CLIENTS_PER_ADDRESS: u32 = 32;
/// Default idle timeout of a DNS-over-TCP connection: Knot's `tcp-idle-timeout` (RFC 7766
/// section 6.2.3 asks for seconds, not minutes).
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on reading the rest of a message once its first byte arrived, and on
/// writing a response. Knot uses 500 ms; 1 s leaves room for a few round trips across
/// continents.
pub const DEFAULT_TCP_IO_TIMEOUT: Duration = Duration::from_secs(1);
/// Default number of queries answered on one connection before it is closed (NSD has no
/// cap; a cap stops one client holding a slot forever by trickling queries).
pub const DEFAULT_TCP_QUERIES_PER_CONNECTION: u32 = 1000;
/// Default cap on admin HTTP connections at once.
pub const DEFAULT_ADMIN_CONNECTIONS: u32 = 64;
/// Default time a client has to send a complete request header to the admin listener.
pub const DEFAULT_ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time an admin connection may stay without traffic.
pub const DEFAULT_ADMIN_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default largest admin request body (the API's JSON bodies are tiny).
pub const DEFAULT_ADMIN_BODY_LIMIT: usize = 64 * 1024;

/// Default receive buffer asked for each UDP worker's socket, bytes: NSD's (4.6 asks for
/// 1 MiB with `SO_RCVBUFFORCE`). The kernel reserves twice that, about 2,500 small
/// queries: a quarter of a second at 10,000 q/s, where the usual system default
/// (212,992 bytes) holds 25 ms, less than a busy or virtualised host may take the CPU
/// away ([`crate::dns::udp_buffers`]).
pub const DEFAULT_UDP_RECEIVE_BUFFER: u32 = 1 << 20;
/// Smallest accepted `udp_receive_buffer` other than 0, bytes: below it the kernel's own
/// minimum and a few datagrams' overhead leave no buffer to speak of.
pub const MIN_UDP_RECEIVE_BUFFER: u32 = 65_536;
/// Largest accepted `udp_receive_buffer`, bytes: seconds of queries at any rate; more is a
/// mistake, not a policy.
pub const MAX_UDP_RECEIVE_BUFFER: u32 = 256 << 20;

/// The limits as configured (validated; `None` where the budget decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// DNS-over-TCP connections at once; `None`: derived from the descriptor limit.
    pub tcp_clients: Option<u32>,
    /// DNS-over-TCP connections from one client address.
    pub tcp_clients_per_address: u32,
    /// Idle timeout of a DNS-over-TCP connection.
    pub tcp_idle_timeout: Duration,
    /// I/O timeout of a DNS-over-TCP connection (rest of a message, a response).
    pub tcp_io_timeout: Duration,
    /// Queries answered on one connection before it is closed.
    pub tcp_queries_per_connection: u32,
    /// Admin HTTP connections at once.
    pub admin_connections: u32,
    /// Time to send a complete request header to the admin listener.
    pub admin_header_timeout: Duration,
    /// Idle timeout of an admin connection.
    pub admin_idle_timeout: Duration,
    /// Largest admin request body, bytes.
    pub admin_body_limit: usize,
    /// Receive buffer asked for each UDP worker's socket ([`crate::dns::udp_buffers`]).
    pub udp_receive_buffer: UdpReceiveBuffer,
}

/// The receive buffer asked for each UDP worker's socket (`udp_receive_buffer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpReceiveBuffer {
    /// The system's default, `net.core.rmem_default` (`udp_receive_buffer = 0`), as gdnsd
    /// and Knot leave it.
    System,
    /// This many bytes. `configured`: written in the configuration, so that the kernel
    /// granting less is worth a warning (the default is only logged as granted).
    Bytes {
        /// Bytes asked for.
        bytes: u32,
        /// Written in the configuration rather than the default.
        configured: bool,
    },
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tcp_clients: None,
            tcp_clients_per_address: DEFAULT_TCP_CLIENTS_PER_ADDRESS,
            tcp_idle_timeout: DEFAULT_TCP_IDLE_TIMEOUT,
            tcp_io_timeout: DEFAULT_TCP_IO_TIMEOUT,
            tcp_queries_per_connection: DEFAULT_TCP_QUERIES_PER_CONNECTION,
            admin_connections: DEFAULT_ADMIN_CONNECTIONS,
            admin_header_timeout: DEFAULT_ADMIN_HEADER_TIMEOUT,
            admin_idle_timeout: DEFAULT_ADMIN_IDLE_TIMEOUT,
            admin_body_limit: DEFAULT_ADMIN_BODY_LIMIT,
            udp_receive_buffer: UdpReceiveBuffer::Bytes {
                bytes: DEFAULT_UDP_RECEIVE_BUFFER,
                configured: false,
            },
        }
    }
}

/// The descriptor budget of a running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The descriptor limit it was derived from.
    pub nofile: u64,
    /// Descriptors kept for probes.
    pub probes: u64,
    /// Admin connections at once.
    pub admin_connections: u32,
    /// DNS-over-TCP connections at once.
    pub tcp_clients: u32,
    /// Whether a configured cap had to be lowered to fit.
    pub lowered: bool,
}

impl Budget {
    /// Check connections that may stay open between checks (`reuse_connection`) beside
    /// `max_in_flight` checks, each holding one descriptor: the rest of the probe reserve.
    /// A probe over it closes its connection after each check, as without reuse.
    pub fn kept_connections(&self, max_in_flight: usize) -> usize {
        let kept = self.probes.saturating_sub(max_in_flight as u64);
        usize::try_from(kept).unwrap_or(usize::MAX)
    }

    /// Splits `nofile` descriptors as described in the module documentation.
    pub fn derive(nofile: u64, limits: &Limits) -> Budget {
        let probes = (nofile / PROBE_RESERVE_DIVISOR).max(MIN_PROBE_RESERVE);
        let clients = nofile.saturating_sub(FIXED_DESCRIPTORS + probes);
        let mut lowered = false;
        // The admin listener gets at most a quarter of the client share.
        let admin_share = (clients / 4).max(1);
        let admin = u64::from(limits.admin_connections).min(admin_share);
        lowered |= admin < u64::from(limits.admin_connections);
        let tcp_share = clients
            .saturating_sub(admin + EVICTIONS_IN_FLIGHT as u64)
            .max(MIN_TCP_CLIENTS);
        let tcp = match limits.tcp_clients {
            Some(c) => {
                lowered |= u64::from(c) > tcp_share;
                u64::from(c).min(tcp_share)
            }
            // Knot's default, tcp-max-clients = half the descriptor limit, within our share.
            None => (nofile / 2).min(tcp_share),
        };
        Budget {
            nofile,
            probes,
            admin_connections: admin as u32,
            tcp_clients: tcp.min(u64::from(u32::MAX)) as u32,
            lowered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_leave_the_probe_reserve_free() {
        let d = Limits::default();
        let b = Budget::derive(65_536, &d);
        assert_eq!(
            (b.probes, b.admin_connections, b.tcp_clients),
            (16_384, 64, 32_768)
        );
        assert!(!b.lowered);
        let b = Budget::derive(1024, &d);
        assert_eq!(
            (b.probes, b.admin_connections, b.tcp_clients),
            (256, 64, 512)
        );
        let b = Budget::derive(256, &d);
        assert_eq!((b.probes, b.admin_connections, b.tcp_clients), (64, 32, 80));
        assert!(b.lowered);
        for n in [64, 128, 256, 1024, 4096, 1 << 20] {
            let b = Budget::derive(n, &d);
            if n >= 256 {
                assert!(
                    FIXED_DESCRIPTORS
                        + b.probes
                        + u64::from(b.admin_connections)
                        + u64::from(b.tcp_clients)
                        + EVICTIONS_IN_FLIGHT as u64
                        <= n,
                    "{n}: {b:?}"
                );
            }
        }
        let tight = Limits {
            tcp_clients: Some(100_000),
            ..Limits::default()
        };
        let b = Budget::derive(1024, &tight);
        assert_eq!(b.tcp_clients, 1024 - 64 - 256 - 64 - 16);
        assert!(b.lowered);
    }

    #[test]
    fn kept_check_connections_get_what_the_checks_in_flight_leave() {
        let d = Limits::default();
        assert_eq!(
            Budget::derive(65_536, &d).kept_connections(256),
            16_384 - 256
        );
        // At 1024 descriptors the default 256 checks in flight take the whole reserve.
        assert_eq!(Budget::derive(1024, &d).kept_connections(256), 0);
        assert_eq!(Budget::derive(1024, &d).kept_connections(1000), 0);
    }
}
