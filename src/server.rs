//! The server's lifecycle: bound sockets in, answers out, until shutdown.
//!
//! The caller binds the sockets ([`Listeners::bind`]) and passes them to [`serve`] with a
//! shutdown future, so tests can bind port 0 and run many servers in one process.
//! `serve` loads the zones, starts the UDP workers, the TCP listener and the admin listener
//! (when one is bound), reloads the zones on request (file changes, SIGHUP, the admin API)
//! through a [`Reloader`], and tells systemd when it is ready.

use std::future::Future;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};

use crate::admin::{self, Admin, Token, overrides::Overrides};
use crate::cluster::{Cluster, ClusterConfig};
use crate::dns::rrl_config::{CookieConfig, RrlConfig};
use crate::dns::shield::{Shield, ShieldError};
use crate::dns::stats::DnsStats;
use crate::dns::{tcp, udp};
use crate::limits::{Budget, Limits};
use crate::pool_watch;
use crate::reload::{self, Reloader, Trigger};
use crate::shutdown::Shutdown;
use crate::zone::{Snapshot, ZoneErrors};

/// Sockets to serve on, bound before the server starts.
#[derive(Debug)]
pub struct Listeners {
    /// UDP sockets.
    pub udp: Vec<UdpSocket>,
    /// TCP listeners.
    pub tcp: Vec<TcpListener>,
    /// The admin listener (API, status page, metrics), if any ([`Listeners::bind_admin`]).
    pub admin: Option<TcpListener>,
}

impl Listeners {
    /// Binds UDP and TCP on each address; with port 0 both get the same free port.
    pub fn bind(addrs: &[SocketAddr]) -> std::io::Result<Listeners> {
        let mut out = Listeners {
            udp: Vec::new(),
            tcp: Vec::new(),
            admin: None,
        };
        for &addr in addrs {
            let (udp, tcp) = bind_pair(addr)?;
            out.udp.push(udp);
            out.tcp.push(tcp);
        }
        Ok(out)
    }

    /// Binds the admin listener (HTTP) on `addr`; port 0 picks a free port.
    pub fn bind_admin(&mut self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let l = TcpListener::bind(addr)?;
        let bound = l.local_addr()?;
        self.admin = Some(l);
        Ok(bound)
    }

    /// Local addresses of the UDP sockets.
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Local addresses of the TCP listeners.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

fn socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    if addr.is_ipv6() {
        // Lets [::]:53 and 0.0.0.0:53 be bound side by side.
        s.set_only_v6(true)?;
    }
    Ok(s)
}

fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    // With port 0 the UDP port is picked first and TCP must get the same number; another
    // process may hold it on TCP, so try a few times.
    let attempts = if addr.port() == 0 { 16 } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = socket(addr, Type::DGRAM, Protocol::UDP)?;
        // SO_REUSEPORT lets each UDP worker bind its own socket to this address (see
        // dns::udp). A port 0 is resolved first by a socket without it, so that the
        // kernel picks a port no socket holds, not one of another process's groups.
        let addr = if addr.port() == 0 {
            let probe = socket(addr, Type::DGRAM, Protocol::UDP)?;
            probe.bind(&addr.into())?;
            probe.local_addr()?.as_socket().expect("an IP socket")
        } else {
            addr
        };
        udp.set_reuse_port(true)?;
        crate::dns::udp::ignore_path_mtu(&udp, addr.is_ipv6())?;
        if let Err(e) = udp.bind(&addr.into()) {
            last_error = Some(e);
            continue;
        }
        let bound: SocketAddr = udp.local_addr()?.as_socket().expect("an IP socket");
        let tcp = socket(bound, Type::STREAM, Protocol::TCP)?;
        tcp.set_reuse_address(true)?;
        match tcp.bind(&bound.into()) {
            Ok(()) => {
                tcp.listen(1024)?;
                return Ok((udp.into(), tcp.into()));
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.expect("at least one attempt"))
}

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Directory of zone files.
    pub zones_dir: PathBuf,
    /// UDP worker threads per UDP socket.
    pub udp_threads: usize,
    /// Threads serving DNS-over-TCP connections (each with its own epoll loop).
    pub tcp_threads: usize,
    /// Reload the zones on SIGHUP. Off by default so that tests running several servers
    /// in one process do not take over the process's signal handling.
    pub reload_on_sighup: bool,
    /// Reload the zones when a file of the zones directory changes.
    pub watch_zones: bool,
    /// Bearer token for state-changing admin calls; without one they are refused.
    pub admin_token: Option<Token>,
    /// Directory of the admin state file (overrides kept across restarts); without one
    /// overrides last until the process ends.
    pub state_dir: Option<PathBuf>,
    /// Send `READY=1` / `STOPPING=1` to systemd (`sd_notify`; nothing happens without
    /// `NOTIFY_SOCKET`).
    pub notify_systemd: bool,
    /// Cluster mode (etcd), if configured.
    pub cluster: Option<ClusterConfig>,
    /// Response rate limiting (UDP); on by default.
    pub rrl: RrlConfig,
    /// DNS cookies; on by default, with a random secret unless a secret file is given.
    pub cookies: CookieConfig,
    /// Connection caps, timeouts and sizes of the listeners (`[limits]`).
    pub limits: Limits,
    /// Who may read the admin API, status page and metrics.
    pub read_access: admin::read_auth::ReadAccess,
    /// Caps on health probes and checks in flight.
    pub probe_limits: crate::pool::limits::ProbeLimits,
}

impl ServeOptions {
    /// Defaults for serving `zones_dir`: one UDP worker and one TCP thread per CPU, zone files watched, no
    /// signal handling.
    pub fn new(zones_dir: impl Into<PathBuf>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            zones_dir: zones_dir.into(),
            udp_threads: cpus,
            tcp_threads: cpus,
            reload_on_sighup: false,
            watch_zones: true,
            admin_token: None,
            state_dir: None,
            notify_systemd: false,
            cluster: None,
            rrl: RrlConfig::default(),
            cookies: CookieConfig::default(),
            limits: Limits::default(),
            probe_limits: crate::pool::limits::ProbeLimits::default(),
            read_access: admin::read_auth::ReadAccess::default(),
        }
    }
}

/// Why serving stopped, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The zone files are invalid at startup.
    #[error("invalid zone data:\n{0}")]
    Zones(#[from] ZoneErrors),
    /// A socket could not be set up.
    #[error("socket setup failed: {0}")]
    Io(#[from] std::io::Error),
    /// The admin state file cannot be read.
    #[error("admin state file: {0}")]
    State(#[from] admin::overrides::StateFileError),
    /// Cookies or rate limiting cannot be set up.
    #[error("{0}")]
    Shield(#[from] ShieldError),
}

/// Loads the zones and answers on `listeners` until `shutdown` completes.
pub async fn serve(
    opts: ServeOptions,
    mut listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Load and check everything before answering: the sockets are bound, so queries
    // that arrive meanwhile wait in the kernel and get a right first answer (pool nodes
    // have had their first health check, admin overrides are applied).
    let cell = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    let budget = budget(&opts.limits);
    // Checks in flight each hold a descriptor: never more than the probes' reserve.
    let mut probe_limits = opts.probe_limits;
    if probe_limits.max_in_flight as u64 > budget.probes {
        tracing::warn!(
            configured = probe_limits.max_in_flight,
            reserve = budget.probes,
            "max_probes_in_flight lowered to the descriptors reserved for probes"
        );
        probe_limits.max_in_flight = budget.probes.max(1) as usize;
    }
    // Kept check connections take what the checks in flight leave of the reserve.
    probe_limits.max_kept = probe_limits
        .max_kept
        .min(budget.kept_connections(probe_limits.max_in_flight));
    tracing::info!(
        max_probes_in_flight = probe_limits.max_in_flight,
        max_kept_connections = probe_limits.max_kept,
        "probe descriptors (reuse_connection keeps at most max_kept_connections open)"
    );
    let reloader = Arc::new(Reloader::with_limits(
        cell.clone(),
        opts.zones_dir.clone(),
        probe_limits,
    ));
    let overrides = Arc::new(match &opts.state_dir {
        Some(dir) => Overrides::open(dir),
        None => Overrides::in_memory(),
    });
    if let Some(file) = overrides.file() {
        tracing::info!(file = %file.display(), overrides = overrides.all().len(), "admin state file");
    }
    let stats = Arc::new(DnsStats::default());
    {
        let o = overrides.clone();
        let s = stats.clone();
        reloader.set_hook(Box::new(move |snapshot| {
            s.track(snapshot);
            o.apply(snapshot);
        }));
    }
    let cluster = match &opts.cluster {
        Some(cfg) => Some(start_cluster(cfg.clone(), &reloader, &overrides, &listeners).await),
        None => None,
    };
    reloader.reload_by(Trigger::Startup).await?;
    let shield = Arc::new(Shield::new(&opts.rrl, &opts.cookies)?);
    log_shield(&opts);

    // The one shutdown signal, passed down to every thread and task that runs until the
    // server stops.
    let stopping = Shutdown::new();
    let mut workers = Vec::new();
    for socket in &listeners.udp {
        workers.extend(udp::spawn_workers(
            socket,
            opts.udp_threads,
            workers.len(),
            opts.limits.udp_receive_buffer,
            cell.clone(),
            stats.clone(),
            shield.clone(),
            stopping.stopping(),
        )?);
        tracing::info!(addr = %socket.local_addr()?, threads = opts.udp_threads, "serving DNS over UDP");
    }

    let tcp_ctx = tcp::TcpContext::new(
        cell.clone(),
        stats.clone(),
        shield.clone(),
        &opts.limits,
        budget.tcp_clients,
        opts.tcp_threads,
    )?;
    for listener in listeners.tcp {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        tokio::spawn(tcp::accept_loop(
            tokio::net::TcpListener::from_std(listener)?,
            tcp_ctx.clone(),
            stopping.stopping(),
        ));
        tracing::info!(%addr, max_clients = budget.tcp_clients, threads = opts.tcp_threads, "serving DNS over TCP");
    }

    let sighup = if opts.reload_on_sighup {
        let also = shield
            .secret_file()
            .is_some()
            .then(|| secret_reload(shield.clone()));
        Some(reload::spawn_sighup(
            reloader.clone(),
            also,
            stopping.stopping(),
        )?)
    } else {
        None
    };
    // Pools going all down are logged whether or not the admin listener runs.
    tokio::spawn(pool_watch::run(cell.clone(), stopping.stopping()));
    let watcher = if opts.watch_zones {
        Some(reload::watch(
            reloader.clone(),
            &opts.zones_dir,
            stopping.stopping(),
        )?)
    } else {
        None
    };

    let admin_task = match listeners.admin.take() {
        Some(listener) => {
            listener.set_nonblocking(true)?;
            let addr = listener.local_addr()?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let ctx = Admin::new(
                reloader.clone(),
                stats.clone(),
                overrides.clone(),
                opts.admin_token.clone(),
            );
            if let Some(c) = &cluster {
                let _ = ctx.cluster.set(c.clone());
            }
            let admin_limits =
                admin::listener::AdminLimits::new(&opts.limits, budget.admin_connections);
            ctx.set_read_access(opts.read_access.clone());
            if !opts.read_access.required() && !addr.ip().is_loopback() {
                tracing::warn!(
                    %addr,
                    "the admin listener is not on loopback and reads are open: set [admin] read_token or require_token_for_reads = true"
                );
            }
            let stop = stopping.stopping();
            tracing::info!(
                %addr,
                writable = opts.admin_token.is_some(),
                "serving the admin API, status page and metrics over HTTP"
            );
            if opts.admin_token.is_none() {
                tracing::info!(
                    "no admin token configured: the admin API is read-only (set [admin] token or ROUNDEL_ADMIN_TOKEN to drain, reload...)"
                );
            }
            Some(tokio::spawn(async move {
                if let Err(e) = admin::run(listener, ctx, admin_limits, stop).await {
                    tracing::error!(error = %e, "the admin listener stopped");
                }
            }))
        }
        None => None,
    };

    if opts.notify_systemd {
        notify(&[sd_notify::NotifyState::Ready]);
    }

    shutdown.await;

    if opts.notify_systemd {
        notify(&[sd_notify::NotifyState::Stopping]);
    }
    stopping.trigger();
    if let Some(t) = admin_task {
        // Graceful: open requests finish; bounded so a hung client cannot hold us up.
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    // The reload tasks end at the signal; a reload under way finishes first (bounded).
    for t in [sighup, watcher].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    tcp_ctx.close_all();
    if let Some(c) = &cluster {
        c.stop().await;
    }
    reloader.monitor().shutdown().await;
    let _ = tokio::task::spawn_blocking(move || {
        for w in workers {
            let _ = w.join();
        }
    })
    .await;
    // The sockets kept for the drop count would hold the addresses.
    stats.udp_sockets.forget();
    tracing::info!("stopped");
    Ok(())
}

/// The descriptor budget under the current limit, logged once.
fn budget(limits: &Limits) -> Budget {
    let nofile = match crate::limits::nofile::current() {
        Ok(n) => n.soft,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the descriptor limit; assuming 1024");
            1024
        }
    };
    let b = Budget::derive(nofile, limits);
    tracing::info!(
        descriptors = b.nofile,
        probe_reserve = b.probes,
        tcp_clients = b.tcp_clients,
        admin_connections = b.admin_connections,
        "descriptor budget"
    );
    if b.lowered {
        tracing::warn!(
            descriptors = b.nofile,
            "connection caps lowered to fit the descriptor limit (raise LimitNOFILE)"
        );
    }
    if u64::from(b.tcp_clients) <= crate::limits::MIN_TCP_CLIENTS {
        tracing::warn!(
            descriptors = b.nofile,
            "the descriptor limit is too low for a server on the internet (raise LimitNOFILE)"
        );
    }
    b
}

/// Starts cluster mode: the probes and the admin overrides go through the cluster, which
/// reads the probes' states, the zones and the served times through `Wiring`. Waits (at
/// most one lease TTL) to join, so the first answers already use the shared overrides.
async fn start_cluster(
    cfg: ClusterConfig,
    reloader: &Arc<Reloader>,
    overrides: &Arc<Overrides>,
    listeners: &Listeners,
) -> Arc<Cluster> {
    // Weak: the reloader's monitor holds the cluster (as its probe hook).
    let r = Arc::downgrade(reloader);
    let (r1, r2, r3) = (r.clone(), r.clone(), r.clone());
    let wiring = crate::cluster::Wiring {
        handles: Box::new(move || {
            r1.upgrade()
                .map(|r| r.monitor().handles())
                .unwrap_or_default()
        }),
        zone_digest: Box::new(move || {
            r2.upgrade()
                .map(|r| zone_digest(&r.cell().load()))
                .unwrap_or_default()
        }),
        served: Box::new(move || {
            r3.upgrade()
                .map(|r| served_nodes(&r.cell().load()))
                .unwrap_or_default()
        }),
        listen: listeners
            .udp_addrs()
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    let bound = cfg.lease_ttl;
    let c = Cluster::start(cfg, wiring);
    reloader.monitor().set_hook(c.clone());
    overrides.set_cluster(c.admin.clone());
    {
        let (o, r) = (overrides.clone(), r.clone());
        c.admin.set_on_change(Box::new(move || {
            if let Some(r) = r.upgrade() {
                o.apply(&r.cell().load());
            }
        }));
    }
    if c.wait_joined(bound).await {
        tracing::info!(name = c.name(), endpoints = ?c.config().endpoints, "cluster mode: joined through etcd");
    } else {
        tracing::warn!(name = c.name(), endpoints = ?c.config().endpoints, "cluster mode: etcd not reachable at start; answering from local checks, joining when it is");
    }
    c
}

/// Digest of the loaded zones (origin and content of each), to spot members whose
/// zones differ.
fn zone_digest(snapshot: &Snapshot) -> String {
    use std::hash::{Hash, Hasher};
    let mut zones: Vec<(String, u64)> = snapshot
        .zones
        .values()
        .map(|z| (z.origin.to_ascii().to_ascii_lowercase(), z.content_digest))
        .collect();
    zones.sort();
    let mut h = rustc_hash::FxHasher::default();
    zones.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Every pool node served by this instance whose answers may still be cached.
fn served_nodes(snapshot: &Snapshot) -> Vec<crate::cluster::ServedNode> {
    let now = std::time::SystemTime::now();
    let mut out = Vec::new();
    for (_, pool) in admin::api::all_pools(snapshot) {
        let name = crate::node::pool_key(&pool.name().to_ascii());
        for node in pool.nodes() {
            if let Some(off) = node.admin.cached_until() {
                let until = admin::time::wall(node.health.epoch() + off);
                if until > now {
                    out.push((name.clone(), node.spec.addr, until));
                }
            }
        }
    }
    out
}

/// Logs the rate-limiting and cookie settings once at start.
fn log_shield(opts: &ServeOptions) {
    let r = &opts.rrl;
    if r.enabled {
        tracing::info!(
            responses_per_second = r.responses_per_second,
            slip = r.slip,
            ipv4_prefix = r.ipv4_prefix,
            ipv6_prefix = r.ipv6_prefix,
            table_size = r.table_size,
            exempt = r.exempt.len(),
            "response rate limiting on (UDP)"
        );
    } else {
        tracing::info!("response rate limiting off");
    }
    match (&opts.cookies.enabled, &opts.cookies.secret_file) {
        (false, _) => tracing::info!("DNS cookies off"),
        (true, Some(f)) => {
            tracing::info!(secret_file = %f.display(), "DNS cookies on (shared secret)")
        }
        (true, None) => tracing::info!("DNS cookies on (random secret, not shared)"),
    }
}

/// Rereads the cookie secret file on SIGHUP (the zones are reloaded after it by the same
/// handler): the rollover procedure of RFC 9018 section 5 is a sequence of file edits,
/// each followed by a SIGHUP to every server of the set.
fn secret_reload(shield: Arc<Shield>) -> reload::OnSighup {
    Box::new(move || match shield.reload_secrets() {
        Ok(()) => tracing::info!("SIGHUP: cookie secrets reloaded"),
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP: cookie secrets not reloaded; the previous ones stay in use")
        }
    })
}

/// Tells systemd about a state change; logs (once per call) when it cannot.
fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::udp::path_mtu_mode;

    /// The listening UDP sockets ignore path MTU information (see
    /// [`crate::dns::udp::ignore_path_mtu`]).
    #[test]
    fn listening_udp_sockets_ignore_path_mtu() {
        let addrs = ["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        let l = Listeners::bind(&addrs).unwrap();
        assert_eq!(path_mtu_mode(&l.udp[0], false), libc::IP_PMTUDISC_OMIT);
        assert_eq!(path_mtu_mode(&l.udp[1], true), libc::IPV6_PMTUDISC_OMIT);
    }
}
