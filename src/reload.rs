//! Reloading: all zone files are re-read and validated, and the served snapshot is
//! replaced only when every one of them is valid.
//!
//! Triggers: a change in the zones directory (inotify through the `notify` crate, with a
//! short debounce so that an editor's write-rename-chmod dance is one reload, then a
//! settle window so that a file written in place in steps is not read half-written), SIGHUP,
//! and the admin API. They all go through one [`Reloader`], one reload at a time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::health::HealthMonitor;
use crate::pool::limits::ProbeLimits;
use crate::shutdown::Stopping;
use crate::zone::{self, Snapshot, SnapshotCell, ZoneErrors};

/// Quiet time after the last file event before reloading.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// What started a reload (for logs, the admin API and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// The first load at startup.
    Startup,
    /// A file of the zones directory changed.
    Watch,
    /// SIGHUP.
    Signal,
    /// The admin API (`POST /api/v1/reload`, `roundel ctl reload`).
    Api,
}

impl Trigger {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Watch => "watch",
            Trigger::Signal => "signal",
            Trigger::Api => "api",
        }
    }
}

/// The outcome of the last reload.
#[derive(Debug, Clone)]
pub struct ReloadOutcome {
    /// When it finished.
    pub at: SystemTime,
    /// What started it.
    pub trigger: Trigger,
    /// Generation served afterwards (the new one on success, the old one on failure).
    pub generation: u64,
    /// Every problem found; empty on success.
    pub errors: Vec<crate::zone::ZoneError>,
}

/// Reload counters and the last outcome, for the admin API and metrics.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// Reloads attempted (the startup load included).
    pub total: u64,
    /// Reloads rejected.
    pub failed: u64,
    /// When the last successful load finished.
    pub last_success: Option<SystemTime>,
    /// The last reload, successful or not.
    pub last: Option<ReloadOutcome>,
}

/// Called after the health monitor has built the pools of a new snapshot and before the
/// snapshot is served: the place to re-apply persisted admin overrides, so that a node an
/// operator put in maintenance is never served, not even for one query.
pub type ReloadHook = Box<dyn Fn(&Snapshot) + Send + Sync>;

/// Replaces the served snapshot with freshly loaded zones, all or nothing.
///
/// A load validates every zone file, then hands every pool to the health monitor, which
/// keeps the state of nodes whose address and check did not change, starts probes for new
/// ones and waits for their first result (bounded by the check timeout), and stops probes
/// of removed nodes. Only then is the new snapshot swapped in, so a new node is never
/// served before it has been checked.
pub struct Reloader {
    cell: Arc<SnapshotCell>,
    zones_dir: PathBuf,
    max_probes: usize,
    monitor: HealthMonitor,
    /// One reload at a time, so that automatic serials are computed against the snapshot
    /// actually being replaced.
    lock: tokio::sync::Mutex<()>,
    total: AtomicU64,
    failed: AtomicU64,
    status: Mutex<ReloadStatus>,
    hook: Mutex<Option<Arc<ReloadHook>>>,
}

impl Reloader {
    /// A reloader for `cell` reading `zones_dir`, with its own health monitor.
    pub fn new(cell: Arc<SnapshotCell>, zones_dir: PathBuf) -> Self {
        Self::with_limits(cell, zones_dir, ProbeLimits::default())
    }

    /// [`Reloader::new`] with caps on probes other than the defaults: zone sets needing
    /// more than `limits.max_probes` probes are rejected, and the monitor runs at most
    /// `limits.max_in_flight` checks at once, keeping at most `limits.max_kept` check
    /// connections between checks.
    pub fn with_limits(cell: Arc<SnapshotCell>, zones_dir: PathBuf, limits: ProbeLimits) -> Self {
        Self {
            cell,
            zones_dir,
            max_probes: limits.max_probes,
            monitor: HealthMonitor::with_caps(limits.max_in_flight, limits.max_kept),
            lock: tokio::sync::Mutex::new(()),
            total: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            status: Mutex::new(ReloadStatus::default()),
            hook: Mutex::new(None),
        }
    }

    /// Installs the hook run on every new snapshot before it is served.
    pub fn set_hook(&self, hook: ReloadHook) {
        *self.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
    }

    /// Reload counters and the last outcome.
    pub fn status(&self) -> ReloadStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        s.total = self.total.load(Relaxed);
        s.failed = self.failed.load(Relaxed);
        s
    }

    fn finish(&self, trigger: Trigger, generation: u64, errors: Vec<crate::zone::ZoneError>) {
        let at = SystemTime::now();
        self.total.fetch_add(1, Relaxed);
        if !errors.is_empty() {
            self.failed.fetch_add(1, Relaxed);
        }
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if errors.is_empty() {
            s.last_success = Some(at);
        }
        s.last = Some(ReloadOutcome {
            at,
            trigger,
            generation,
            errors,
        });
    }

    /// The snapshot being served.
    pub fn cell(&self) -> &Arc<SnapshotCell> {
        &self.cell
    }

    /// The health monitor that probes the nodes of the served pools.
    pub fn monitor(&self) -> &HealthMonitor {
        &self.monitor
    }

    /// Re-reads every zone file, recording what started the reload. On success the new
    /// snapshot is served from the next query on; on failure the old one stays and the
    /// errors are returned (and logged).
    pub async fn reload_by(&self, trigger: Trigger) -> Result<Arc<Snapshot>, ZoneErrors> {
        let _guard = self.lock.lock().await;
        let previous = self.cell.load_full();
        let dir = self.zones_dir.clone();
        let prev = previous.clone();
        // A thread of its own, at background priority when queries are being answered, so
        // that answering threads sharing its core are not slowed by the load
        // (crate::background). The first load has no answers to protect: full speed.
        let low = trigger != Trigger::Startup;
        let max_probes = self.max_probes;
        let loaded = crate::background::run("zone-load", low, move || {
            zone::load_snapshot_with(&dir, Some(&prev), max_probes)
        })
        .await
        .unwrap_or_else(|| {
            Err(ZoneErrors(vec![zone::ZoneError {
                file: PathBuf::new(),
                line: 0,
                column: 0,
                key: String::new(),
                reason: "reload task failed".into(),
            }]))
        });
        let mut snapshot = match loaded {
            Ok(snapshot) => snapshot,
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!("reload: {e}");
                }
                if trigger == Trigger::Startup {
                    // Nothing was served before: say so, not "still serving".
                    tracing::error!(
                        problems = errors.0.len(),
                        "the zones are invalid: not starting (nothing is served)"
                    );
                } else {
                    tracing::error!(
                        problems = errors.0.len(),
                        generation = previous.generation,
                        trigger = trigger.as_str(),
                        "reload failed: still serving the previous zones"
                    );
                }
                self.finish(trigger, previous.generation, errors.0.clone());
                return Err(errors);
            }
        };
        let (keys, specs): (Vec<_>, Vec<_>) = snapshot.pools().into_iter().unzip();
        // `reconcile` returns one runtime per spec it was given, in that order.
        let reconciled = self.monitor.reconcile(&specs).await;
        snapshot.attach_pools(keys.into_iter().zip(reconciled.pools));
        for spec in &specs {
            let check = &spec.check;
            let stale = check.detection_time() + Duration::from_secs(spec.ttl.into());
            tracing::info!(
                pool = %spec.name,
                nodes = spec.nodes.len(),
                policy = spec.policy.as_str(),
                check = check.kind.name(),
                "pool ready; worst-case stale window {:.1} s = interval {:?} x fall {} + timeout {:?} + TTL {} s",
                stale.as_secs_f64(),
                check.interval,
                check.fall,
                check.timeout,
                spec.ttl,
            );
        }
        let hook = self.hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            hook(&snapshot);
        }
        let snapshot = Arc::new(snapshot);
        self.cell.store(snapshot.clone());
        // The old snapshot is freed by the reclaimer, never by the query that happens to
        // drop the last reference to it.
        crate::reclaim::retire(previous);
        self.finish(trigger, snapshot.generation, Vec::new());
        tracing::info!(
            trigger = trigger.as_str(),
            generation = snapshot.generation,
            zones = snapshot.zones.len(),
            pools = specs.len(),
            probes_started = reconciled.started,
            probes_kept = reconciled.kept,
            probes_stopped = reconciled.stopped,
            "zones loaded"
        );
        Ok(snapshot)
    }
}

/// What else a SIGHUP rereads, before the zones (the cookie secrets, for rollover).
pub type OnSighup = Box<dyn Fn() + Send + Sync>;

/// Reloads on every SIGHUP until the server stops, after running `also` (one handler for
/// the signal, so everything it rereads is reread in one order).
#[cfg(unix)]
pub fn spawn_sighup(
    reloader: Arc<Reloader>,
    also: Option<OnSighup>,
    mut stop: Stopping,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hup.recv() => if got.is_none() { return },
                () = stop.wait() => return,
            }
            if let Some(also) = &also {
                also();
            }
            tracing::info!("SIGHUP: reloading zones");
            let _ = reloader.reload_by(Trigger::Signal).await;
        }
    }))
}

#[cfg(not(unix))]
pub fn spawn_sighup(
    _reloader: Arc<Reloader>,
    _also: Option<OnSighup>,
    _stop: Stopping,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    Ok(tokio::spawn(async {}))
}

/// Watches `dir` and reloads after changes to its zone files until the server stops; the
/// returned task ends then (and with it the watch).
pub fn watch(
    reloader: Arc<Reloader>,
    dir: &Path,
    mut stop: Stopping,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use notify::{RecursiveMode, Watcher};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if wants_reload(event) {
            let _ = tx.send(());
        }
    })
    .map_err(std::io::Error::other)?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(std::io::Error::other)?;
    let dir = dir.to_path_buf();
    Ok(tokio::spawn(async move {
        // The watcher lives as long as this task: it is dropped, and the watch ends, when
        // the server stops.
        let _watcher = watcher;
        loop {
            tokio::select! {
                got = rx.recv() => if got.is_none() { return },
                () = stop.wait() => return,
            }
            // Debounce: wait until the directory has been quiet for a moment.
            while let Ok(Some(())) = tokio::time::timeout(WATCH_DEBOUNCE, rx.recv()).await {}
            if !settled(&dir).await {
                tracing::warn!(
                    dir = %dir.display(),
                    "zone files still changing after {:?}: not reading them yet (write zone files to a temporary name and rename them into place)",
                    zone::settle::SETTLE_MAX
                );
                continue;
            }
            tracing::info!("zone files changed: reloading");
            let _ = reloader.reload_by(Trigger::Watch).await;
        }
    }))
}

/// Waits until the zone files of `dir` have not changed (size, modification time) for
/// [`zone::settle::SETTLE_WINDOW`], at most [`zone::settle::SETTLE_MAX`]; false if they
/// were still changing then.
async fn settled(dir: &Path) -> bool {
    use zone::settle::{SETTLE_MAX, SETTLE_WINDOW, fingerprint};
    let rounds = (SETTLE_MAX.as_millis() / SETTLE_WINDOW.as_millis()).max(1);
    let mut before = fingerprint(dir);
    for _ in 0..rounds {
        tokio::time::sleep(SETTLE_WINDOW).await;
        let now = fingerprint(dir);
        if now == before {
            return true;
        }
        before = now;
    }
    false
}

/// Whether a watcher event calls for a reload: a change (not a read) of a zone file. A
/// watcher error (an overflowed event queue, a removed directory...) means changes may
/// have been missed: it is logged as a warning, since zone edits may now need SIGHUP or
/// the admin API to be picked up.
fn wants_reload(event: notify::Result<notify::Event>) -> bool {
    match event {
        Ok(event) => {
            let relevant = event
                .paths
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "toml"));
            relevant && !matches!(event.kind, notify::EventKind::Access(_))
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                "watching the zones directory failed: changes may be missed until a reload by SIGHUP or the admin API"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Collects formatted log output.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn watcher_errors_are_warnings() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let reload = tracing::subscriber::with_default(subscriber, || {
            wants_reload(Err(notify::Error::generic("event queue overflowed")))
        });
        assert!(!reload);
        let log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(
            log.contains("WARN") && log.contains("event queue overflowed"),
            "log: {log:?}"
        );
    }
}
