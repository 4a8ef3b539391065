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
use crate::dns::stats::DnsStats;
use crate::dns::{tcp, udp};
use crate::limits::{Budget, Limits};
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
        udp.bind(&addr.into())?;
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
    /// Connection caps, timeouts and sizes of the listeners (`[limits]`).
    pub limits: Limits,
}

impl ServeOptions {
    /// Defaults for serving `zones_dir`: one UDP worker per CPU, zone files watched, no
    /// signal handling.
    pub fn new(zones_dir: impl Into<PathBuf>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            zones_dir: zones_dir.into(),
            udp_threads: cpus,
            reload_on_sighup: false,
            watch_zones: true,
            admin_token: None,
            state_dir: None,
            notify_systemd: false,
            limits: Limits::default(),
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
    let reloader = Arc::new(Reloader::new(cell.clone(), opts.zones_dir.clone()));
    let overrides = Arc::new(match &opts.state_dir {
        Some(dir) => Overrides::open(dir)?,
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
    reloader.reload_by(Trigger::Startup).await?;

    // The one shutdown signal, passed down to every thread and task that runs until the
    // server stops.
    let stopping = Shutdown::new();
    let mut workers = Vec::new();
    for socket in &listeners.udp {
        workers.extend(udp::spawn_workers(
            socket,
            opts.udp_threads,
            workers.len(),
            cell.clone(),
            stats.clone(),
            stopping.stopping(),
        )?);
        tracing::info!(addr = %socket.local_addr()?, threads = opts.udp_threads, "serving DNS over UDP");
    }

    let budget = budget(&opts.limits);
    let tcp_ctx = tcp::TcpContext::new(
        cell.clone(),
        stats.clone(),
        &opts.limits,
        budget.tcp_clients,
    );
    for listener in listeners.tcp {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        tokio::spawn(tcp::accept_loop(
            tokio::net::TcpListener::from_std(listener)?,
            tcp_ctx.clone(),
            stopping.stopping(),
        ));
        tracing::info!(%addr, max_clients = budget.tcp_clients, "serving DNS over TCP");
    }

    let sighup = if opts.reload_on_sighup {
        Some(reload::spawn_sighup(reloader.clone(), stopping.stopping())?)
    } else {
        None
    };
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
            let admin_limits =
                admin::listener::AdminLimits::new(&opts.limits, budget.admin_connections);
            let stop = stopping.stopping().stopped();
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
    reloader.monitor().shutdown().await;
    let _ = tokio::task::spawn_blocking(move || {
        for w in workers {
            let _ = w.join();
        }
    })
    .await;
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

/// Tells systemd about a state change; logs (once per call) when it cannot.
fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
