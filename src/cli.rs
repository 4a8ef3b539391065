//! The command line: `roundel serve | check | import | export | ctl`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::admin::Token;
use crate::config::{self, LogFormat};
use crate::server::{self, Listeners, ServeOptions};
use crate::zone;

/// Roundel: a health-aware authoritative DNS server.
#[derive(Debug, Parser)]
#[command(name = "roundel", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

// `defer`: a subcommand's arguments are built only when it is the one invoked, so that a
// server's start does not construct (and page in the code of) `ctl`'s eight commands and
// the other subcommands' arguments. Names and descriptions stay eager, for `--help`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
enum Command {
    /// Serve the zones of a directory over UDP and TCP.
    Serve(ServeArgs),
    /// Validate zone files without serving them; exit 1 and list every problem if any.
    Check {
        /// Zone files or directories of them (default: zones/).
        paths: Vec<PathBuf>,
        /// Server configuration file: validated (with its `[limits]`, printing the
        /// descriptor budget), and its `[health] max_probes` applies (default: the
        /// built-in cap).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Convert an RFC 1035 master file (BIND/NSD format) to a Roundel zone file on stdout.
    Import {
        /// The master file.
        file: PathBuf,
        /// Origin, when the file has no $ORIGIN.
        #[arg(long)]
        origin: Option<String>,
    },
    /// Print a Roundel zone file as an RFC 1035 master file on stdout.
    Export {
        /// The zone file.
        file: PathBuf,
    },
    /// Talk to a running server's admin API: status, drain, maint, ready, weight,
    /// reload, explain.
    Ctl(crate::ctl::CtlArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to answer on, UDP and TCP (repeatable; IPv6 as [::1]:53) [default: 127.0.0.1:5353]
    #[arg(long = "listen", value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Directory of zone files [default: zones]
    #[arg(long, value_name = "DIR")]
    zones: Option<PathBuf>,
    /// Server configuration file (TOML); command-line options override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Do not watch the zones directory; reload with SIGHUP or the admin API only.
    #[arg(long)]
    no_watch: bool,
    /// UDP worker threads per address, at least 1 [default: one per CPU]
    #[arg(long, value_name = "N", value_parser = parse_udp_threads)]
    udp_threads: Option<usize>,
    /// Threads serving DNS-over-TCP connections, at least 1 [default: one per CPU]
    #[arg(long, value_name = "N", value_parser = parse_tcp_threads)]
    tcp_threads: Option<usize>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Log one line per query (off by default; also `[log] queries`, or the admin API).
    #[arg(long)]
    query_log: bool,
    /// Admin API, status page and /metrics listener [default: 127.0.0.1:8053]
    #[arg(long, value_name = "ADDR:PORT")]
    admin: Option<SocketAddr>,
    /// Do not start the admin listener.
    #[arg(long, conflicts_with = "admin")]
    no_admin: bool,
    /// File holding the admin token (wins over ROUNDEL_ADMIN_TOKEN and the configuration).
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Directory for the admin state file [default: $STATE_DIRECTORY when systemd sets it]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    crate::reclaim::tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Check { paths, config } => check(&paths, config.as_deref()),
        Command::Import { file, origin } => import(&file, origin.as_deref()),
        Command::Export { file } => export(&file),
        Command::Ctl(args) => crate::ctl::main(args),
    }
}

fn init_logging(format: LogFormat, filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    // RUST_LOG, when set, wins over the configuration.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(filter.unwrap_or(config::DEFAULT_LOG_FILTER)));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let file_config = match &args.config {
        Some(path) => match config::load(path) {
            Ok(c) => c,
            Err(errors) => {
                for e in errors {
                    eprintln!("{e}");
                }
                return ExitCode::from(2);
            }
        },
        None => config::Config::default(),
    };
    init_logging(
        args.log_format
            .or(file_config.log.format)
            .unwrap_or_default(),
        file_config.log.filter.as_deref(),
    );

    let mut listen = if !args.listen.is_empty() {
        args.listen.clone()
    } else {
        file_config.listen.clone()
    };
    if listen.is_empty() {
        listen.push(
            config::DEFAULT_LISTEN
                .parse()
                .expect("valid default address"),
        );
    }
    let zones = args
        .zones
        .or(file_config.zones)
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_ZONES_DIR));
    let mut opts = ServeOptions::new(zones);
    if let Some(n) = args.udp_threads.or(file_config.udp_threads) {
        opts.udp_threads = n;
    }
    if let Some(n) = args.tcp_threads.or(file_config.tcp_threads) {
        opts.tcp_threads = n;
    }
    opts.probe_limits = file_config.probe_limits;
    opts.read_access = file_config.admin.read_access.clone();
    opts.reload_on_sighup = true;
    opts.rrl = file_config.rrl.clone();
    opts.cookies = file_config.cookies.clone();
    opts.watch_zones = !args.no_watch;
    opts.notify_systemd = true;
    opts.limits = file_config.limits.clone();
    // The soft descriptor limit is often 1,024 whatever the hard one allows; the budgets
    // (crate::limits) are derived from what is in force after this.
    match crate::limits::nofile::raise() {
        Ok(n) => tracing::info!(soft = n.soft, hard = n.hard, "descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the descriptor limit"),
    }
    if args.query_log || file_config.log.queries == Some(true) {
        crate::dns::set_query_log(true);
        tracing::info!("per-query logging is on");
    }

    // Admin token: --admin-token-file, else ROUNDEL_ADMIN_TOKEN, else the configuration.
    opts.admin_token = match &args.admin_token_file {
        Some(f) => match std::fs::read_to_string(f) {
            Ok(t) => match Token::new(&t) {
                Some(t) => Some(t),
                None => {
                    tracing::error!(file = %f.display(), "the admin token file is empty");
                    return ExitCode::from(2);
                }
            },
            Err(e) => {
                tracing::error!(file = %f.display(), error = %e, "cannot read the admin token file");
                return ExitCode::from(2);
            }
        },
        None => std::env::var(crate::admin::TOKEN_ENV)
            .ok()
            .and_then(|t| Token::new(&t))
            .or(file_config.admin.token.clone()),
    };
    if opts.read_access.required() && opts.read_access.token.is_none() && opts.admin_token.is_none()
    {
        tracing::error!(
            "[admin] require_token_for_reads is set but there is no token to read with: set [admin] read_token or an admin token"
        );
        return ExitCode::from(2);
    }
    opts.cluster = file_config.cluster.clone();
    opts.state_dir = args
        .state_dir
        .clone()
        .or(file_config.admin.state_dir.clone())
        .or_else(|| {
            // systemd's StateDirectory= sets it (possibly a list; take the first).
            std::env::var_os("STATE_DIRECTORY")
                .and_then(|v| {
                    v.to_str()
                        .and_then(|s| s.split(':').next())
                        .map(PathBuf::from)
                })
                .filter(|p| !p.as_os_str().is_empty())
        });

    // Bind before anything else, so that a port in use (or port 53 without the
    // capability) is reported at once.
    let mut listeners = match Listeners::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addresses = ?listen, error = %e, "cannot bind");
            return ExitCode::from(2);
        }
    };
    let admin_enabled = !args.no_admin && file_config.admin.enabled != Some(false);
    if admin_enabled {
        let explicit = args.admin.or(file_config.admin.listen);
        let addr = explicit.unwrap_or_else(|| {
            crate::admin::DEFAULT_LISTEN
                .parse()
                .expect("valid default address")
        });
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the admin listener is reachable from the network: its read-only calls need no token");
        }
        if let Err(e) = listeners.bind_admin(addr) {
            if explicit.is_some() {
                tracing::error!(%addr, error = %e, "cannot bind the admin listener");
                return ExitCode::from(2);
            }
            // The default address is a convenience: DNS matters more than the status page.
            tracing::warn!(%addr, error = %e, "cannot bind the default admin listener; running without it (set --admin ADDR, or --no-admin)");
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .thread_name("roundel")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = {
        let _guard = runtime.enter();
        match shutdown_signal() {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot install the signal handlers");
                return ExitCode::FAILURE;
            }
        }
    };
    let result = runtime.block_on(server::serve(opts, listeners, shutdown));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(server::ServeError::Zones(errors)) => {
            for e in &errors.0 {
                tracing::error!("{e}");
            }
            tracing::error!(
                problems = errors.0.len(),
                "not started: the zone files are invalid"
            );
            ExitCode::from(2)
        }
        Err(e) => {
            tracing::error!(error = %e, "stopped on error");
            ExitCode::FAILURE
        }
    }
}

/// A future that completes on SIGINT or SIGTERM. The handlers are installed now (inside
/// the runtime), not at the first poll: a SIGTERM sent right after READY=1 must still
/// shut down gracefully rather than kill the process.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

fn check(paths: &[PathBuf], config_file: Option<&Path>) -> ExitCode {
    let max_probes = match config_file.map(config::load) {
        None => crate::pool::limits::MAX_PROBES,
        Some(Ok(c)) => {
            let path = config_file.unwrap_or(Path::new(""));
            let nofile = crate::limits::nofile::current().map_or(1024, |n| n.hard);
            let b = crate::limits::Budget::derive(nofile, &c.limits);
            // On stderr: stdout lists problems first, one per line.
            eprintln!(
                "{}: configuration OK (with {} descriptors: {} TCP clients, {} admin connections, {} kept for probes, of which {} for check connections kept open by reuse_connection)",
                path.display(),
                b.nofile,
                b.tcp_clients,
                b.admin_connections,
                b.probes,
                b.kept_connections(c.probe_limits.max_in_flight.min(b.probes.max(1) as usize))
            );
            if let crate::limits::UdpReceiveBuffer::Bytes { bytes, .. } =
                c.limits.udp_receive_buffer
            {
                let rmem_max = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok());
                match rmem_max {
                    Some(max) if max < bytes => eprintln!(
                        "{}: udp_receive_buffer {bytes} bytes is more than net.core.rmem_max ({max}): the kernel grants it only to a process with CAP_NET_ADMIN (root has it), otherwise {max}",
                        path.display()
                    ),
                    _ => eprintln!("{}: udp_receive_buffer {bytes} bytes", path.display()),
                }
            }
            c.probe_limits.max_probes
        }
        Some(Err(errors)) => {
            for e in &errors {
                println!("{e}");
            }
            eprintln!("{} problem(s) found", errors.len());
            return ExitCode::FAILURE;
        }
    };
    let default = [PathBuf::from(config::DEFAULT_ZONES_DIR)];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            match zone::dir::zone_files(p) {
                Ok(mut f) => files.append(&mut f),
                Err(errors) => {
                    for e in &errors {
                        println!("{e}");
                    }
                    eprintln!("{} problem(s) found", errors.len());
                    return ExitCode::FAILURE;
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    match zone::snapshot_from_files_with(&files, None, max_probes) {
        Ok(snapshot) => {
            for z in snapshot.sorted_zones() {
                println!(
                    "{}: zone {} OK ({} names)",
                    z.file.display(),
                    z.origin,
                    z.nodes.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            eprintln!("{} problem(s) found", errors.0.len());
            ExitCode::FAILURE
        }
    }
}

fn import(file: &Path, origin: Option<&str>) -> ExitCode {
    match zone::master::import_file(file, origin) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn export(file: &Path) -> ExitCode {
    match zone::file::load_file(file) {
        Ok(z) => {
            print!("{}", zone::master::export(&z));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `--udp-threads`: a count of at least 1, refused like the configuration file's
/// `udp_threads = 0` rather than quietly raised.
fn parse_udp_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (0 would leave UDP unanswered)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a thread count: {e}")),
    }
}

/// `--tcp-threads`: as `--udp-threads`.
fn parse_tcp_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (0 would leave TCP unanswered)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a thread count: {e}")),
    }
}
