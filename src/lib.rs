//! Roundel: a health-aware authoritative DNS server.
//!
//! Data flows one way, and the modules follow it: each module below imports only modules
//! listed above it (no two modules import each other).
//!
//! - [`shutdown`]: the one shutdown signal passed down to every task and thread.
//! - [`source`]: the base: errors pinned to file, line and column, and the source map
//!   that pins them; `config`, `pool` and `zone` report through it.
//! - [`pool`]: the `[checks.*]` and `[pools.*]` tables of zone files, validated into
//!   pool and check specifications.
//! - [`node`]: live node state, written by health checks and operators, read by
//!   selection: each target's health, each pool node's admin overrides, and the
//!   [`node::PoolRuntime`] that joins a pool's spec with them; a state epoch that
//!   tells the answer path when a pool's memoized choice is stale.
//! - [`limits`]: the descriptor budget (probes keep their share under any client load),
//!   connection caps and timeouts of the listeners, accept-error back-off, and the
//!   counters of what they refused.
//! - [`zone`]: zone files (TOML) are read and validated into an immutable
//!   [`zone::Snapshot`] (pools carry their runtime once attached); `zone::master`
//!   converts to and from RFC 1035 master files. [`zone::SnapshotCell`] holds the
//!   snapshot being served.
//! - [`health`]: probes (HTTP, HTTPS, TCP) with rise/fall hysteresis, one per distinct
//!   target and check, publishing each node's state through atomics.
//! - [`cluster`]: optional cluster mode through etcd v3: the instances of an NS set
//!   share out the probes, derive one health view from everyone's observations and keep
//!   admin overrides in one place.
//! - [`policy`]: which healthy nodes go into one answer (round robin, weighted,
//!   client hash, fastest; tiers, slow start, all-down modes), lock- and allocation-free.
//! - [`pool_watch`]: logs pools going all down (WARN) and answering again, off the
//!   query path, with or without the admin listener.
//! - [`answer`]: the answer engine: from (snapshot, question, client) it decides rcode,
//!   flags and sections; pools are answered through [`policy::select`].
//! - [`dns`]: the wire: a strict request parser and fast encoder ([`dns::wire`]), UDP
//!   worker threads ([`dns::udp`]) with their sockets' buffers and kernel drop counts
//!   ([`dns::udp_buffers`]), the TCP listener with its caps ([`dns::tcp`]) and
//!   the TCP threads that serve its connections ([`dns::tcp_worker`]), and
//!   the query counters, kept per zone by [`zone::Zone::index`] ([`dns::stats`]).
//! - [`reload`]: zone reloads on file changes, SIGHUP and the admin API, all or nothing;
//!   [`reclaim`] frees the replaced snapshots off the answering threads, and
//!   [`background`] runs the loads at a lower priority.
//! - [`admin`]: the operations surface on its own HTTP listener: the admin API (state,
//!   drain / maint / weight overrides kept in a state file, reload, explain), Prometheus
//!   metrics and the live status page; [`ctl`] is its command-line client.
//! - [`config`]: the server configuration file.
//! - [`server`]: the lifecycle: injected sockets, startup, shutdown, systemd readiness.
//! - [`cli`]: the command line; `main.rs` only calls [`cli::main`].

pub mod admin;
pub mod answer;
pub mod background;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod ctl;
pub mod dns;
pub mod health;
pub mod limits;
pub mod node;
pub mod policy;
pub mod pool;
pub mod pool_watch;
pub mod reclaim;
pub mod reload;
pub mod server;
pub mod shutdown;
pub mod source;
pub mod zone;
