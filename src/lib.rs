//! Roundel: a health-aware authoritative DNS server.
//!
//! Data flows one way, and the modules follow it:
//!
//! - [`zone`]: zone files (TOML) are read and validated into an immutable
//!   [`zone::Snapshot`]; `zone::master` converts to and from RFC 1035 master files.
//! - [`answer`]: the answer engine, a pure function of (snapshot, question, client) that
//!   decides rcode, flags and sections.
//! - [`dns`]: the wire: a strict request parser and fast encoder ([`dns::wire`]), UDP
//!   worker threads ([`dns::udp`]) and the TCP listener on hickory-server ([`dns::tcp`]).
//! - [`server`]: the lifecycle: injected sockets, startup, shutdown; [`reload`]: zone
//!   reloads on file changes, SIGHUP and request, all or nothing.
//! - [`config`] and [`cli`]: the server configuration file and the command line;
//!   `main.rs` only calls [`cli::main`].

pub mod answer;
pub mod cli;
pub mod config;
pub mod dns;
pub mod reload;
pub mod server;
pub mod zone;
