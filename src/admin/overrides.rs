//! Operator overrides (drain, maint, weight) and the state file that keeps them across
//! reloads and restarts, like gdnsd's `admin_state`.
//!
//! The overrides are keyed by (pool name, node address). They are applied to the node
//! slots of every new snapshot by a reload hook, before the snapshot is served, so a node
//! put in maintenance is never handed out after a reload or a restart, not even once.
//! Overrides of nodes that are no longer configured are kept: they apply again if the
//! node comes back.
//!
//! The file (`STATE_DIR/admin-state.json`) is written to a temporary name, synced and
//! renamed over the old one, so a crash leaves either the old or the new file.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::time::unix;
use crate::node::{AdminState, NodeKey};
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
    pub fn open(dir: &Path) -> Result<Self, StateFileError> {
        let path = dir.join(STATE_FILE);
        let map = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(StateFileError::Io { path, source }),
        };
        Ok(Self {
            map: Mutex::new(map),
            file: Some(path),
        })
    }

    /// The state file, if overrides are persisted.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeKey, Override>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every override.
    pub fn all(&self) -> BTreeMap<NodeKey, Override> {
        self.lock().clone()
    }

    /// The override of one node.
    pub fn get(&self, key: &NodeKey) -> Option<Override> {
        self.lock().get(key).copied()
    }

    /// Changes one node's override with `f` and saves the file. An override back to
    /// `ready` without a weight is removed. On a write error nothing changes.
    pub fn update(
        &self,
        key: NodeKey,
        f: impl FnOnce(&mut Override),
    ) -> Result<Override, StateFileError> {
        let mut map = self.lock();
        let mut o = map.get(&key).copied().unwrap_or(Override {
            state: AdminState::Ready,
            weight: None,
            since: SystemTime::now(),
        });
        f(&mut o);
        o.since = SystemTime::now();
        let mut next = map.clone();
        if o.state == AdminState::Ready && o.weight.is_none() {
            next.remove(&key);
        } else {
            next.insert(key, o);
        }
        if let Some(path) = &self.file {
            write_atomically(path, &render(&next))?;
        }
        *map = next;
        Ok(o)
    }

    /// Sets the admin slots of every pool node of `snapshot` from the overrides (nodes
    /// without one go back to ready, no weight). Runs before the snapshot is served.
    pub fn apply(&self, snapshot: &Snapshot) {
        let map = self.lock();
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
        let since = SystemTime::UNIX_EPOCH
            + std::time::Duration::try_from_secs_f64(e.since.max(0.0)).unwrap_or_default();
        map.insert(
            NodeKey::of(&e.pool, e.addr),
            Override {
                state,
                weight: e.weight,
                since,
            },
        );
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
        let o = Overrides::open(&dir).unwrap();
        let a: IpAddr = "192.0.2.10".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        o.update(NodeKey::of("Web.Example.Test", a), |o| {
            o.state = AdminState::Drain
        })
        .unwrap();
        o.update(NodeKey::of("web.example.test.", b), |o| o.weight = Some(5))
            .unwrap();
        let again = Overrides::open(&dir).unwrap().all();
        assert_eq!(again.len(), 2);
        let k = NodeKey::of("web.example.test.", a);
        assert_eq!(again[&k].state, AdminState::Drain);
        assert_eq!(again[&NodeKey::of("web.example.test.", b)].weight, Some(5));
        o.update(k.clone(), |o| o.state = AdminState::Ready)
            .unwrap();
        assert!(!Overrides::open(&dir).unwrap().all().contains_key(&k));
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
