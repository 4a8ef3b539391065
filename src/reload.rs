//! Reloading: all zone files are re-read and validated, and the served snapshot is
//! replaced only when every one of them is valid.
//!
//! Triggers: a change in the zones directory (inotify through the `notify` crate, with a
//! short debounce so that an editor's write-rename-chmod dance is one reload), SIGHUP,
//! and the admin API. They all go through one [`Reloader`], one reload at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::dns::SnapshotCell;
use crate::health::HealthMonitor;
use crate::zone::{self, Snapshot, ZoneErrors};

/// Quiet time after the last file event before reloading.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

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
    monitor: HealthMonitor,
    /// One reload at a time, so that automatic serials are computed against the snapshot
    /// actually being replaced.
    lock: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// A reloader for `cell` reading `zones_dir`, with its own health monitor.
    pub fn new(cell: Arc<SnapshotCell>, zones_dir: PathBuf) -> Self {
        Self {
            cell,
            zones_dir,
            monitor: HealthMonitor::new(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The snapshot being served.
    pub fn cell(&self) -> &Arc<SnapshotCell> {
        &self.cell
    }

    /// The health monitor that probes the nodes of the served pools.
    pub fn monitor(&self) -> &HealthMonitor {
        &self.monitor
    }

    /// Re-reads every zone file. On success the new snapshot is served from the next
    /// query on; on failure the old one stays and the errors are returned (and logged).
    pub async fn reload(&self) -> Result<Arc<Snapshot>, ZoneErrors> {
        let _guard = self.lock.lock().await;
        let previous = self.cell.load_full();
        let dir = self.zones_dir.clone();
        let prev = previous.clone();
        let loaded = tokio::task::spawn_blocking(move || zone::load_snapshot(&dir, Some(&prev)))
            .await
            .unwrap_or_else(|e| {
                Err(ZoneErrors(vec![zone::ZoneError {
                    file: PathBuf::new(),
                    line: 0,
                    column: 0,
                    key: String::new(),
                    reason: format!("reload task failed: {e}"),
                }]))
            });
        let mut snapshot = match loaded {
            Ok(snapshot) => snapshot,
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!("reload: {e}");
                }
                tracing::error!(
                    problems = errors.0.len(),
                    generation = previous.generation,
                    "reload failed: still serving the previous zones"
                );
                return Err(errors);
            }
        };
        let specs = snapshot.pool_specs();
        let reconciled = self.monitor.reconcile(&specs).await;
        snapshot.attach_pools(reconciled.pools);
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
        let snapshot = Arc::new(snapshot);
        self.cell.store(snapshot.clone());
        tracing::info!(
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

/// Reloads on every SIGHUP until the returned task is aborted.
#[cfg(unix)]
pub fn spawn_sighup(reloader: Arc<Reloader>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading zones");
            let _ = reloader.reload().await;
        }
    }))
}

#[cfg(not(unix))]
pub fn spawn_sighup(_reloader: Arc<Reloader>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    Ok(tokio::spawn(async {}))
}

/// Watches `dir` and reloads after changes to its zone files. Watching stops when the
/// returned guard is dropped.
pub fn watch(reloader: Arc<Reloader>, dir: &Path) -> std::io::Result<WatchGuard> {
    use notify::{RecursiveMode, Watcher};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let relevant = event
                .paths
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "toml"));
            if relevant && !matches!(event.kind, notify::EventKind::Access(_)) {
                let _ = tx.send(());
            }
        }
    })
    .map_err(std::io::Error::other)?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(std::io::Error::other)?;
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until the directory has been quiet for a moment.
            while let Ok(Some(())) = tokio::time::timeout(WATCH_DEBOUNCE, rx.recv()).await {}
            tracing::info!("zone files changed: reloading");
            let _ = reloader.reload().await;
        }
    });
    Ok(WatchGuard {
        _watcher: watcher,
        task,
    })
}

/// Keeps a zone directory watched; dropping it stops the watch.
pub struct WatchGuard {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}
