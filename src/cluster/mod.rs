//! Cluster mode: the instances of an NS set share one health view, one probe schedule
//! and one admin state through etcd v3.
//!
//! The module sits between health checking and answering: it consumes the local
//! probes' results through [`crate::health::ProbeHook`] and produces the node states
//! the answer path reads. It never touches the wire or the admin surface; `server`
//! starts it and `admin` shows it.
//!
//! * [`config`]: the `[cluster]` table.
//! * [`keys`]: key layout and values in etcd; [`rendezvous`]: who probes what.
//! * `session`: membership on a lease renewed every TTL/3, list + watch of the prefix,
//!   and the guarded writes (`publish`).
//! * [`view`]: the health rule that turns observations into node states.
//! * [`admin_store`]: drain / maint / weight overrides kept in etcd.
//! * [`mode`]: joined, degraded (etcd lost: last view kept), fallback (local probing).
//! * [`status`]: what the admin API, status page and metrics show.

pub mod admin_store;
pub mod config;
pub mod keys;
pub mod mode;
mod probe_hook;
mod publish;
pub mod rendezvous;
mod session;
pub mod status;
pub mod view;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use admin_store::{AdminStore, StoredOverride};
pub use config::{ClusterConfig, HealthRule};
pub use mode::Mode;

use crate::health::ProbeKey;
use crate::node::NodeHealth;
use keys::{Keys, Member, Observation, ServedValue};

/// When a node was last served by this instance and until when that answer may be
/// cached: (pool key, address, cached until).
pub type ServedNode = (String, IpAddr, SystemTime);

/// What the cluster reads from the rest of the server, as functions so that it depends
/// on nothing above health checking.
pub struct Wiring {
    /// Every probe and the state the answer path reads.
    pub handles: Box<dyn Fn() -> Vec<(ProbeKey, Arc<NodeHealth>)> + Send + Sync>,
    /// Digest of the loaded zones.
    pub zone_digest: Box<dyn Fn() -> String + Send + Sync>,
    /// Every node served by this instance, with its cache expiry.
    pub served: Box<dyn Fn() -> Vec<ServedNode> + Send + Sync>,
    /// DNS listen addresses.
    pub listen: Vec<String>,
}

/// An observation as received, with when (on this instance's clock).
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub obs: Observation,
    pub at: Instant,
}

/// A local observation waiting to be (re)written.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub value: Observation,
    pub dirty: bool,
    pub written: Option<Instant>,
    pub checked: Instant,
    pub interval: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub members: BTreeMap<String, Member>,
    /// Probe id -> member -> observation.
    pub obs: HashMap<String, BTreeMap<String, Received>>,
    pub served: BTreeMap<String, ServedValue>,
    pub outbox: HashMap<String, Outgoing>,
}

/// Counters for the metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Observations written to etcd.
    pub published: AtomicU64,
    /// Observations received from etcd (watch events and listings).
    pub received: AtomicU64,
    /// Failed etcd calls and lost sessions.
    pub etcd_errors: AtomicU64,
    /// Checks run by this instance.
    pub probes_run: AtomicU64,
}

/// One instance's part in the cluster.
pub struct Cluster {
    pub(crate) cfg: ClusterConfig,
    pub(crate) keys: Keys,
    wiring: Wiring,
    state: Mutex<Shared>,
    /// Joined, degraded or fallback.
    pub mode: mode::ModeCell,
    /// Admin overrides kept in etcd.
    pub admin: Arc<AdminStore>,
    /// Metrics.
    pub counters: Counters,
    pub(crate) publish: Notify,
    pub(crate) view_changed: Notify,
    stop: watch::Sender<bool>,
    joined: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("cfg", &self.cfg)
            .field("mode", &self.mode.get())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts the etcd session and the view (inside a tokio runtime). The instance is
    /// `joining` until the session is up; see [`Cluster::wait_joined`].
    pub fn start(cfg: ClusterConfig, wiring: Wiring) -> Arc<Self> {
        let c = Arc::new(Cluster {
            keys: Keys::new(&cfg.prefix),
            mode: mode::ModeCell::new(cfg.grace),
            cfg,
            wiring,
            state: Mutex::new(Shared::default()),
            admin: Arc::new(AdminStore::default()),
            counters: Counters::default(),
            publish: Notify::new(),
            view_changed: Notify::new(),
            stop: watch::channel(false).0,
            joined: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
        });
        let s = tokio::spawn(session::run(c.clone(), c.stop.subscribe()));
        let v = tokio::spawn(view_loop(c.clone(), c.stop.subscribe()));
        c.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([s, v]);
        c
    }

    /// Waits at most `bound` for the first join; returns whether it happened.
    pub async fn wait_joined(&self, bound: Duration) -> bool {
        let mut rx = self.joined.subscribe();
        matches!(
            tokio::time::timeout(bound, rx.wait_for(|j| *j)).await,
            Ok(Ok(_))
        )
    }

    /// Leaves the cluster: revokes the lease (so the share of the probes moves at once)
    /// and stops the tasks, bounded.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// This member's name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn handles(&self) -> Vec<(ProbeKey, Arc<NodeHealth>)> {
        (self.wiring.handles)()
    }

    pub(crate) fn frozen(&self) -> bool {
        self.cfg.freeze.load(Relaxed)
    }

    pub(crate) fn set_joined(&self) {
        self.mode.joined();
        self.joined.send_replace(true);
    }

    /// Until when answers naming (pool, addr) given by the *other* members may be
    /// cached, from what they published.
    pub fn others_cached_until(&self, pool: &str, addr: IpAddr) -> Option<SystemTime> {
        let k = format!("{pool}|{addr}");
        let st = self.lock();
        st.served
            .iter()
            .filter(|(m, _)| **m != self.cfg.name)
            .filter_map(|(_, v)| v.get(&k))
            .max()
            .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(*ms))
    }

    /// Refresh period of observations (see [`view`] for freshness).
    pub fn refresh(&self) -> Duration {
        self.cfg.lease_ttl / 2
    }
}

/// Re-derives the view on news and every [`view::DERIVE_TICK`]; moves to fallback when
/// the grace period runs out.
async fn view_loop(c: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(view::DERIVE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
            () = c.view_changed.notified() => {}
        }
        c.mode.tick("etcd unreachable");
        view::derive(&c);
    }
}
