//! Roundel: a health-aware authoritative DNS server.
//!
//! Data flows one way, and the modules follow it:
//!
//! - [`zone`]: zone files (TOML) are read and validated into an immutable
//!   [`zone::Snapshot`]; `zone::master` converts to and from RFC 1035 master files.
//! - [`pool`]: the `[checks.*]` and `[pools.*]` tables of zone files, validated into
//!   pool and check specifications.
//! - [`health`]: probes (HTTP, HTTPS, TCP) with rise/fall hysteresis, one per distinct
//!   target and check, publishing each node's state through atomics.
//! - [`policy`]: which healthy nodes go into one answer (round robin, weighted,
//!   client hash, fastest; tiers, slow start, all-down modes), lock- and allocation-free.
//! - [`answer`]: the answer engine, a pure function of (snapshot, question, client) that
//!   decides rcode, flags and sections; pools are answered through [`policy::select`].
//! - [`dns`]: the wire: a strict request parser and fast encoder ([`dns::wire`]), UDP
//!   worker threads ([`dns::udp`]) and the TCP listener on hickory-server ([`dns::tcp`]).
//! - [`server`]: the lifecycle: injected sockets, startup, shutdown, systemd readiness;
//!   [`reload`]: zone reloads on file changes, SIGHUP and the admin API, all or nothing;
//!   [`reclaim`] frees the replaced snapshots off the answering threads.
//! - [`admin`]: the operations surface on its own HTTP listener: the admin API (state,
//!   drain / maint / weight overrides kept in a state file, reload, explain), Prometheus
//!   metrics and the live status page; [`ctl`] is its command-line client.
//! - [`config`] and [`cli`]: the server configuration file and the command line;
//!   `main.rs` only calls [`cli::main`].

pub mod admin;
pub mod answer;
pub mod background;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod dns;
pub mod health;
pub mod policy;
pub mod pool;
pub mod reclaim;
pub mod reload;
pub mod server;
pub mod zone;
