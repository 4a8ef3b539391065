//! The server's lifecycle: bound sockets in, answers out, until shutdown.
//!
//! The caller binds the sockets ([`Listeners::bind`]) and passes them to [`serve`] with a
//! shutdown future, so tests can bind port 0 and run many servers in one process.
//! `serve` loads the zones, starts the UDP workers and the TCP listener, and reloads the
//! zones on request (file changes, SIGHUP) through a [`Reloader`].

use std::future::Future;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};

use crate::dns::stats::DnsStats;
use crate::dns::{tcp::TcpHandler, udp};
use crate::reload::{self, Reloader};
use crate::zone::{Snapshot, ZoneErrors};

/// How long an idle TCP connection is kept open (RFC 7766 section 6.2.3 suggests seconds).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection (hickory-dns uses the same).
const TCP_RESPONSE_QUEUE: usize = 32;

/// Sockets to serve on, bound before the server starts.
#[derive(Debug)]
pub struct Listeners {
    /// UDP sockets.
    pub udp: Vec<UdpSocket>,
    /// TCP listeners.
    pub tcp: Vec<TcpListener>,
}

impl Listeners {
    /// Binds UDP and TCP on each address; with port 0 both get the same free port.
    pub fn bind(addrs: &[SocketAddr]) -> std::io::Result<Listeners> {
        let mut out = Listeners {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for &addr in addrs {
            let (udp, tcp) = bind_pair(addr)?;
            out.udp.push(udp);
            out.tcp.push(tcp);
        }
        Ok(out)
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
    /// The TCP listener ended on its own.
    #[error("the TCP listener stopped unexpectedly: {0}")]
    TcpStopped(String),
}

/// Loads the zones and answers on `listeners` until `shutdown` completes.
pub async fn serve(
    opts: ServeOptions,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Load and check everything before answering: the sockets are bound, so queries
    // that arrive meanwhile wait in the kernel and get a right first answer (pool nodes
    // have had their first health check).
    let cell = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    let reloader = Arc::new(Reloader::new(cell.clone(), opts.zones_dir.clone()));
    reloader.reload().await?;
    let stats = Arc::new(DnsStats::default());

    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for socket in &listeners.udp {
        workers.extend(udp::spawn_workers(
            socket,
            opts.udp_threads,
            workers.len(),
            cell.clone(),
            stats.clone(),
            stop.clone(),
        )?);
        tracing::info!(addr = %socket.local_addr()?, threads = opts.udp_threads, "serving DNS over UDP");
    }

    // TCP has its own hickory Server, so that its end (hickory-dns issue 3725: an
    // ECONNABORTED from accept() ends the listener) is seen and treated as fatal.
    let mut tcp = hickory_server::Server::new(TcpHandler::new(cell.clone(), stats.clone()));
    for listener in listeners.tcp {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        tcp.register_listener(
            tokio::net::TcpListener::from_std(listener)?,
            TCP_IDLE_TIMEOUT,
            TCP_RESPONSE_QUEUE,
        );
        tracing::info!(%addr, "serving DNS over TCP");
    }

    let sighup = if opts.reload_on_sighup {
        Some(reload::spawn_sighup(reloader.clone())?)
    } else {
        None
    };
    let watcher = if opts.watch_zones {
        Some(reload::watch(reloader.clone(), &opts.zones_dir)?)
    } else {
        None
    };

    let result = tokio::select! {
        () = shutdown => Ok(()),
        r = tcp.block_until_done() => Err(ServeError::TcpStopped(match r { Ok(()) => "no error".into(), Err(e) => e.to_string() })),
    };

    if let Some(h) = sighup {
        h.abort();
    }
    drop(watcher);
    stop.store(true, Ordering::Relaxed);
    let _ = tcp.shutdown_gracefully().await;
    reloader.monitor().shutdown().await;
    let _ = tokio::task::spawn_blocking(move || {
        for w in workers {
            let _ = w.join();
        }
    })
    .await;
    tracing::info!("stopped");
    result
}
