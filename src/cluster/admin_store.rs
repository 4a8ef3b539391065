//! Admin overrides (drain, maint, weight) kept in etcd, so that a change made through
//! any instance's API takes effect on every instance.
//!
//! The store is a local mirror of `PREFIX/admin/`: reads never wait for etcd. A change is
//! applied to the mirror at once and queued for etcd; the session writes the queue as
//! soon as etcd is reachable and every instance's watch applies it (within one second
//! while etcd is up). Overrides have no lease, so they survive a restart of every
//! instance. The admin module keeps using its own state file when not clustered.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use super::keys::AdminValue;
use crate::node::AdminState;

/// (pool name, lowercase and absolute; node address).
pub type Key = (String, IpAddr);

/// One stored override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredOverride {
    /// Drain, maint, or ready with a weight.
    pub state: AdminState,
    /// Weight override.
    pub weight: Option<u32>,
    /// When it was changed.
    pub since: SystemTime,
}

type Callback = Box<dyn Fn() + Send + Sync>;

/// The mirror of the overrides in etcd, and the writes not yet sent.
#[derive(Default)]
pub struct AdminStore {
    map: Mutex<BTreeMap<Key, StoredOverride>>,
    pending: Mutex<Vec<(Key, Option<StoredOverride>)>>,
    on_change: OnceLock<Callback>,
    pub(crate) wake: tokio::sync::Notify,
}

impl std::fmt::Debug for AdminStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminStore").finish_non_exhaustive()
    }
}

fn state_name(s: AdminState) -> &'static str {
    match s {
        AdminState::Ready => "ready",
        AdminState::Drain => "drain",
        AdminState::Maint => "maint",
    }
}

impl AdminStore {
    /// Every override in force.
    pub fn all(&self) -> BTreeMap<Key, StoredOverride> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets (or with `None` removes) one override here at once and in etcd as soon as it
    /// is reachable.
    pub fn put(&self, key: Key, value: Option<StoredOverride>) {
        {
            let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
            match value {
                Some(v) => m.insert(key.clone(), v),
                None => m.remove(&key),
            };
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, value));
        self.wake.notify_one();
    }

    /// Called after every change that came from etcd (to re-apply the overrides to the
    /// served nodes). Only the first call has an effect.
    pub fn set_on_change(&self, f: Callback) {
        let _ = self.on_change.set(f);
    }

    fn changed(&self) {
        if let Some(f) = self.on_change.get() {
            f();
        }
    }

    /// Writes not yet sent to etcd (taken out; put back with [`Self::requeue`] on failure).
    pub(crate) fn take_pending(&self) -> Vec<(Key, Option<StoredOverride>)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn requeue(&self, mut writes: Vec<(Key, Option<StoredOverride>)>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        writes.append(&mut p);
        *p = writes;
    }

    /// Replaces the mirror with a full listing (pending writes stay on top).
    pub(crate) fn replace(&self, listing: BTreeMap<Key, StoredOverride>) {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        {
            let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
            *m = listing;
            for (k, v) in pending {
                match v {
                    Some(v) => m.insert(k, v),
                    None => m.remove(&k),
                };
            }
        }
        self.changed();
    }

    /// Applies one watched change.
    pub(crate) fn apply_event(&self, key: Key, value: Option<StoredOverride>) {
        {
            let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
            if m.get(&key) == value.as_ref() {
                return;
            }
            match value {
                Some(v) => m.insert(key, v),
                None => m.remove(&key),
            };
        }
        self.changed();
    }
}

/// The etcd value of an override.
pub(crate) fn encode(o: &StoredOverride) -> String {
    let v = AdminValue {
        state: state_name(o.state).to_owned(),
        weight: o.weight,
        since: o
            .since
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    };
    serde_json::to_string(&v).expect("plain data")
}

/// Reads an override from its key parts and value; `None` when malformed.
pub(crate) fn decode(pool: &str, addr: &str, value: &[u8]) -> Option<(Key, StoredOverride)> {
    let addr: IpAddr = addr.parse().ok()?;
    let v: AdminValue = serde_json::from_slice(value).ok()?;
    let state = match v.state.as_str() {
        "ready" => AdminState::Ready,
        "drain" => AdminState::Drain,
        "maint" => AdminState::Maint,
        _ => return None,
    };
    let since = SystemTime::UNIX_EPOCH
        + std::time::Duration::try_from_secs_f64(v.since.max(0.0)).unwrap_or_default();
    Some((
        (pool.to_owned(), addr),
        StoredOverride {
            state,
            weight: v.weight,
            since,
        },
    ))
}
