//! Operator overrides (drain, maint, weight) and the state file that keeps them across
//! reloads and restarts, like gdnsd's `admin_state`.
//!
//! The overrides are keyed by (pool name, node address). They are applied to the node
//! slots of every new snapshot by a reload hook, before the snapshot is served, so a node
//! put in maintenance is never handed out after a reload or a restart, not even once.
//! Overrides of nodes that are no longer configured are kept: they apply again if the
//! node comes back.
//!
//! In cluster mode ([`Overrides::set_cluster`]) the overrides live in etcd instead
//! ([`crate::cluster::AdminStore`]), shared by every instance, and the file is not used.
//!
//! The file (`STATE_DIR/admin-state.json`) is written to a temporary name, synced and
//! renamed over the old one, so a crash leaves either the old or the new file.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::time::unix;
use crate::cluster::{AdminStore, StoredOverride};
use crate::node::{AdminState, NodeKey, pool_key};
use crate::pool::spec::MAX_WEIGHT;
use crate::zone::Snapshot;

/// File name of the state file inside the state directory.
pub const STATE_FILE: &str = "admin-state.json";

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid state file.
    #[error("{path}:{line}:{column}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        reason: String,
    },
}

/// One node's override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Override {
    /// Drain, maint, or ready (with a weight override only).
    pub state: AdminState,
    /// Weight override.
    pub weight: Option<u32>,
    /// When it was last changed.
    pub since: SystemTime,
}

/// On-disk form of one override.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    pool: String,
    addr: IpAddr,
    state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<u32>,
    /// Unix seconds.
    since: f64,
}

/// On-disk form of the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    nodes: Vec<Entry>,
}

/// The overrides in force, and where they are saved.
#[derive(Debug, Default)]
pub struct Overrides {
    map: Mutex<BTreeMap<NodeKey, Override>>,
    file: Option<PathBuf>,
    cluster: std::sync::OnceLock<Arc<AdminStore>>,
}

fn from_stored(o: StoredOverride) -> Override {
    Override {
        state: o.state,
        weight: o.weight,
        since: o.since,
    }
}

/// Name of an admin state in files, the API and logs.
pub fn state_name(s: AdminState) -> &'static str {
    match s {
        AdminState::Ready => "ready",
        AdminState::Drain => "drain",
        AdminState::Maint => "maint",
    }
}

fn parse_state(s: &str) -> Option<AdminState> {
    match s {
        "ready" => Some(AdminState::Ready),
        "drain" => Some(AdminState::Drain),
        "maint" => Some(AdminState::Maint),
        _ => None,
    }
}

impl Overrides {
    /// Overrides kept in memory only (no state directory).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Overrides saved in `dir/admin-state.json`, loaded from it if it exists.
    ///
    /// A state file that cannot be read or is damaged (truncated, not JSON, a value out of
    /// range) never stops the server: it is renamed to `admin-state.json.bad-<unix time>`
    /// for the operator to inspect, a WARN says why, and the server starts without
    /// overrides. Refusing to start would turn a damaged file into a DNS outage (and, under
    /// systemd, a restart loop); the old file is kept, not overwritten, so nothing is lost.
    pub fn open(dir: &Path) -> Self {
        let path = dir.join(STATE_FILE);
        let map = match read_limited(&path) {
            Ok(None) => BTreeMap::new(),
            Ok(Some(text)) => match parse(&path, &text) {
                Ok(map) => map,
                Err(e) => {
                    move_aside(&path, &e);
                    BTreeMap::new()
                }
            },
            Err(e) => {
                move_aside(&path, &e);
                BTreeMap::new()
            }
        };
        Self {
            map: Mutex::new(map),
            file: Some(path),
            cluster: std::sync::OnceLock::new(),
        }
    }

    /// Keeps the overrides in the cluster's store (etcd) from now on. Call it before the
    /// first load; only the first call has an effect.
    pub fn set_cluster(&self, store: Arc<AdminStore>) {
        let _ = self.cluster.set(store);
    }

    /// The state file, if overrides are persisted in one (not in cluster mode).
    pub fn file(&self) -> Option<&Path> {
        if self.cluster.get().is_some() {
            return None;
        }
        self.file.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeKey, Override>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every override.
    pub fn all(&self) -> BTreeMap<NodeKey, Override> {
        if let Some(c) = self.cluster.get() {
            return c
                .all()
                .into_iter()
                .map(|((pool, addr), o)| (NodeKey { pool, addr }, from_stored(o)))
                .collect();
        }
        self.lock().clone()
    }

    /// The override of one node.
    pub fn get(&self, key: &NodeKey) -> Option<Override> {
        if self.cluster.get().is_some() {
            return self.all().get(key).copied();
        }
        self.lock().get(key).copied()
    }

    /// Changes one node's override with `f` and saves the file. An override back to
    /// `ready` without a weight is removed. On a write error nothing changes.
    pub fn update(
        &self,
        key: NodeKey,
        f: impl Fn(&mut Override),
    ) -> Result<Override, StateFileError> {
        let mut changed = self.update_all(vec![key], f)?;
        Ok(changed.remove(0))
    }

    /// Changes the overrides of every node of `keys` with `f` and saves the file once:
    /// all or nothing (on a write error nothing changes). The new overrides, in the order
    /// of `keys`. Blocking (the file is written and fsynced): call it off the runtime.
    pub fn update_all(
        &self,
        keys: Vec<NodeKey>,
        f: impl Fn(&mut Override),
    ) -> Result<Vec<Override>, StateFileError> {
        let fresh = || Override {
            state: AdminState::Ready,
            weight: None,
            since: SystemTime::now(),
        };
        let changed = |mut o: Override| {
            f(&mut o);
            o.since = SystemTime::now();
            o
        };
        let kept = |o: &Override| o.state != AdminState::Ready || o.weight.is_some();
        if let Some(c) = self.cluster.get() {
            let all = self.all();
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let o = changed(all.get(&key).copied().unwrap_or_else(fresh));
                let stored = kept(&o).then_some(StoredOverride {
                    state: o.state,
                    weight: o.weight,
                    since: o.since,
                });
                c.put((key.pool, key.addr), stored);
                out.push(o);
            }
            return Ok(out);
        }
        let mut map = self.lock();
        let mut next = map.clone();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let o = changed(next.get(&key).copied().unwrap_or_else(fresh));
            if kept(&o) {
                next.insert(key, o);
            } else {
                next.remove(&key);
            }
            out.push(o);
        }
        if let Some(path) = &self.file {
            write_atomically(path, &render(&next))?;
        }
        *map = next;
        Ok(out)
    }

    /// [`Overrides::update_all`] on a blocking thread: the state file is written and
    /// fsynced before a change is acknowledged, and that must not hold up the runtime
    /// threads that serve the API (and DNS over TCP).
    pub async fn update_all_off_runtime(
        self: Arc<Self>,
        keys: Vec<NodeKey>,
        f: impl Fn(&mut Override) + Send + 'static,
    ) -> Result<Vec<Override>, StateFileError> {
        let path = self.file.clone().unwrap_or_default();
        tokio::task::spawn_blocking(move || self.update_all(keys, f))
            .await
            .unwrap_or_else(|e| {
                Err(StateFileError::Io {
                    path,
                    source: std::io::Error::other(format!("state file task failed: {e}")),
                })
            })
    }

    /// Sets the admin slots of every pool node of `snapshot` from the overrides (nodes
    /// without one go back to ready, no weight). Runs before the snapshot is served.
    pub fn apply(&self, snapshot: &Snapshot) {
        let map = match self.cluster.get() {
            Some(_) => self.all(),
            None => self.lock().clone(),
        };
        for zone in snapshot.zones.values() {
            for pool in &zone.pools {
                let Some(rt) = &pool.runtime else { continue };
                for node in rt.nodes() {
                    let o = map.get(&NodeKey::new(rt.name(), node.spec.addr));
                    node.admin
                        .set_state(o.map_or(AdminState::Ready, |o| o.state));
                    node.admin.set_weight(o.and_then(|o| o.weight));
                }
            }
        }
    }
}

/// Largest state file read: far more than any real set of overrides (an entry is about
/// 120 bytes), small enough that a runaway file cannot exhaust memory at start.
pub const MAX_STATE_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Latest accepted `since` (Unix seconds; 2100-01-01T00:00:00Z): later values are damage,
/// not clock skew, and would overflow the system clock type (`"since": 1e19`).
pub const MAX_SINCE: f64 = 4_102_444_800.0;

/// The file's text, `None` when there is none.
fn read_limited(path: &Path) -> Result<Option<String>, StateFileError> {
    use std::io::Read;
    let io = |source| StateFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut text = String::new();
    f.take(MAX_STATE_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_STATE_FILE_BYTES {
        return Err(StateFileError::Invalid {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            reason: format!("larger than {MAX_STATE_FILE_BYTES} bytes"),
        });
    }
    Ok(Some(text))
}

/// Renames a damaged state file out of the way (`admin-state.json.bad-<unix time>`) and
/// says so.
fn move_aside(path: &Path, why: &StateFileError) {
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = path.with_file_name(format!("{STATE_FILE}.bad-{stamp}"));
    match std::fs::rename(path, &aside) {
        Ok(()) => tracing::warn!(
            error = %why,
            moved_to = %aside.display(),
            "damaged admin state file moved aside: starting without admin overrides"
        ),
        Err(e) => tracing::warn!(
            error = %why,
            rename_error = %e,
            "damaged admin state file (could not move it aside): starting without admin overrides"
        ),
    }
}

fn parse(path: &Path, text: &str) -> Result<BTreeMap<NodeKey, Override>, StateFileError> {
    let invalid = |line: usize, column: usize, reason: String| StateFileError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        reason,
    };
    let file: File =
        serde_json::from_str(text).map_err(|e| invalid(e.line(), e.column(), e.to_string()))?;
    if file.version != 1 {
        return Err(invalid(
            1,
            1,
            format!("unsupported version {} (expected 1)", file.version),
        ));
    }
    let mut map = BTreeMap::new();
    for (i, e) in file.nodes.into_iter().enumerate() {
        let state = parse_state(&e.state).ok_or_else(|| {
            invalid(
                0,
                0,
                format!(
                    "nodes[{i}].state: {:?} is not ready, drain or maint",
                    e.state
                ),
            )
        })?;
        let pool = pool_key(&e.pool);
        if pool.len() > 256 || hickory_proto::rr::Name::from_ascii(&pool).is_err() || pool == "." {
            return Err(invalid(
                0,
                0,
                format!("nodes[{i}].pool: {:?} is not a pool name", e.pool),
            ));
        }
        if let Some(w) = e.weight
            && w > MAX_WEIGHT
        {
            return Err(invalid(
                0,
                0,
                format!("nodes[{i}].weight: {w} is over the maximum {MAX_WEIGHT}"),
            ));
        }
        if !(e.since.is_finite() && (0.0..=MAX_SINCE).contains(&e.since)) {
            return Err(invalid(
                0,
                0,
                format!(
                    "nodes[{i}].since: {} is not a time between 1970 and 2100 in Unix seconds",
                    e.since
                ),
            ));
        }
        let since = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(e.since);
        if map
            .insert(
                NodeKey { pool, addr: e.addr },
                Override {
                    state,
                    weight: e.weight,
                    since,
                },
            )
            .is_some()
        {
            return Err(invalid(
                0,
                0,
                format!("nodes[{i}]: a second entry for {} {}", e.pool, e.addr),
            ));
        }
    }
    Ok(map)
}

fn render(map: &BTreeMap<NodeKey, Override>) -> String {
    let file = File {
        version: 1,
        nodes: map
            .iter()
            .map(|(NodeKey { pool, addr }, o)| Entry {
                pool: pool.clone(),
                addr: *addr,
                state: state_name(o.state).to_owned(),
                weight: o.weight,
                since: unix(o.since),
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&file).expect("serialising plain data");
    s.push('\n');
    s
}

/// Writes `text` to `path` through a temporary file in the same directory, synced and
/// renamed, then syncs the directory.
fn write_atomically(path: &Path, text: &str) -> Result<(), StateFileError> {
    let io = |source| StateFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{STATE_FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_removal_at_ready() {
        let dir = std::env::temp_dir().join(format!("roundel-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join(STATE_FILE));
        let o = Overrides::open(&dir);
        let a: IpAddr = "192.0.2.10".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        o.update(NodeKey::of("Web.Example.Test", a), |o| {
            o.state = AdminState::Drain
        })
        .unwrap();
        o.update(NodeKey::of("web.example.test.", b), |o| o.weight = Some(5))
            .unwrap();
        let again = Overrides::open(&dir).all();
        assert_eq!(again.len(), 2);
        let k = NodeKey::of("web.example.test.", a);
        assert_eq!(again[&k].state, AdminState::Drain);
        assert_eq!(again[&NodeKey::of("web.example.test.", b)].weight, Some(5));
        o.update(k.clone(), |o| o.state = AdminState::Ready)
            .unwrap();
        assert!(!Overrides::open(&dir).all().contains_key(&k));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_files_say_where() {
        let p = Path::new("/x/admin-state.json");
        let e = parse(p, "{\n  \"version\": 1,\n  \"nodes\": [ {\"pool\": 3} ]\n}").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("/x/admin-state.json:3:"), "{text}");
        let e = parse(
            p,
            r#"{"version":1,"nodes":[{"pool":"a.","addr":"192.0.2.1","state":"down","since":0}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not ready, drain or maint"), "{e}");
    }
}
