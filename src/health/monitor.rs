//! [`HealthMonitor`]: runs one probe task per distinct (target, check) and turns pool specs
//! into [`PoolRuntime`]s wired to the probes' state.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use super::hook::{LocalObservation, ProbeHook};
use super::hysteresis::Hysteresis;
use super::keep::KeptConnections;
use super::probe::{CheckResult, Prober};
use super::supervise::supervise;
use crate::node::{
    HISTORY_LEN, Health, NodeAdmin, NodeHealth, NodeKey, PoolRuntime, ProbeDetail, Transition,
};
use crate::pool::{CheckKind, CheckSpec, PoolSpec, ProbeTarget};

/// Identity of a probe: two pool nodes with equal keys share one probe and one state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    /// Where the check connects.
    pub target: ProbeTarget,
    /// What the check does (compared by value, not by name).
    pub check: Arc<CheckSpec>,
}

struct ProbeEntry {
    health: Arc<NodeHealth>,
    task: Option<JoinHandle<()>>,
    first: watch::Receiver<bool>,
}

#[derive(Default)]
struct Registry {
    probes: HashMap<ProbeKey, ProbeEntry>,
    admin: HashMap<NodeKey, Arc<NodeAdmin>>,
}

/// What one [`HealthMonitor::reconcile`] did.
#[derive(Debug)]
pub struct Reconciled {
    /// One runtime per input pool, in input order.
    pub pools: Vec<Arc<PoolRuntime>>,
    /// Probes started.
    pub started: usize,
    /// Probes kept running with their state.
    pub kept: usize,
    /// Probes whose check changed for a target that was already probed: the node keeps
    /// its state, history and counters, and the new check continues from that state
    /// (`rise` and `fall` apply from its first result, slow start when it comes back).
    pub carried: usize,
    /// Probes stopped.
    pub stopped: usize,
    /// New probes whose first result did not arrive in time (they count as down).
    pub late: usize,
}

/// A snapshot of one probe for the admin API and metrics.
#[derive(Debug, Clone)]
pub struct ProbeStatus {
    /// Which probe.
    pub key: ProbeKey,
    /// Current health.
    pub health: Health,
    /// Smoothed RTT.
    pub srtt: Option<Duration>,
    /// Counters, last failure, history.
    pub detail: ProbeDetail,
}

/// Extra time, beyond a check's own timeout, that `reconcile` waits for a first result
/// (task start-up, TLS config loading on first use).
const FIRST_RESULT_SLACK: Duration = Duration::from_millis(500);

/// Runs the health probes of every pool. Create one per process (inside a tokio runtime
/// for `reconcile`); call [`reconcile`](Self::reconcile) with the pools of every zone at
/// start and after each reload.
pub struct HealthMonitor {
    /// Clock base shared by every node state (slow start timestamps).
    epoch: Instant,
    registry: Mutex<Registry>,
    /// Serialises reconciles: each one sees the probes the previous one left.
    reconcile_lock: tokio::sync::Mutex<()>,
    jitter: RandomState,
    /// The coordinator of the probes in cluster mode (set before the first reconcile).
    hook: std::sync::OnceLock<Arc<dyn ProbeHook>>,
    /// One permit per check in flight ([`crate::pool::limits::MAX_PROBES_IN_FLIGHT`]).
    in_flight: Arc<Semaphore>,
    /// The bound on connections kept between checks (`reuse_connection`).
    kept: Arc<KeptConnections>,
    /// Probe tasks restarted after a panic, since start.
    panics: Arc<AtomicU64>,
}

impl Default for HealthMonitor {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthMonitor {
    /// A monitor with no probes, running at most
    /// [`MAX_PROBES_IN_FLIGHT`](crate::pool::limits::MAX_PROBES_IN_FLIGHT) checks at once.
    pub fn new() -> Self {
        Self::with_max_in_flight(crate::pool::limits::MAX_PROBES_IN_FLIGHT)
    }

    /// A monitor with no probes, running at most `max` checks at once (at least one).
    pub fn with_max_in_flight(max: usize) -> Self {
        Self::with_caps(max, crate::pool::limits::MAX_KEPT_CONNECTIONS)
    }

    /// A monitor with no probes, running at most `max` checks at once (at least one) and
    /// keeping at most `max_kept` check connections open between checks.
    pub fn with_caps(max: usize, max_kept: usize) -> Self {
        Self {
            epoch: Instant::now(),
            registry: Mutex::new(Registry::default()),
            reconcile_lock: tokio::sync::Mutex::new(()),
            jitter: RandomState::new(),
            hook: std::sync::OnceLock::new(),
            in_flight: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
            kept: KeptConnections::new(max_kept),
            panics: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Installs the coordinator of the probes (cluster mode). Call it before the first
    /// [`reconcile`](Self::reconcile): probes started earlier run without it. Only the
    /// first call has an effect.
    pub fn set_hook(&self, hook: Arc<dyn ProbeHook>) {
        let _ = self.hook.set(hook);
    }

    /// Every probe with the state the answer path reads.
    pub fn handles(&self) -> Vec<(ProbeKey, Arc<NodeHealth>)> {
        self.registry()
            .probes
            .iter()
            .map(|(k, e)| (k.clone(), e.health.clone()))
            .collect()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the running probes match `pools` (all pools of all zones): probes whose
    /// (target, check) is unchanged keep running with their state; a target whose check
    /// changed keeps its state under the new check (see [`Reconciled::carried`]); new ones
    /// start; the rest stop. Admin overrides are kept per (pool name, node address).
    ///
    /// Resolves once every new probe has its first result (each bounded by its check
    /// timeout plus a small slack), so the returned runtimes answer right from the start:
    /// a dead node is already down. Returns one [`PoolRuntime`] per pool, in order.
    pub async fn reconcile(&self, pools: &[PoolSpec]) -> Reconciled {
        let _serial = self.reconcile_lock.lock().await;
        if pools
            .iter()
            .any(|p| matches!(&p.check.kind, CheckKind::Http(h) if h.tls))
        {
            // HTTPS checks need the TLS configurations; plain HTTP checks
            // (`http_check`) do not, so a server without HTTPS checks never reads the
            // system trust store (about 19 million instructions and its memory).
            super::tls::warm().await;
        }
        let mut waits = Vec::new();
        // Every probe this reconcile needs: an old probe that is one of them is kept as it
        // is, the others may hand their state to a changed check of their target.
        let wanted: HashSet<ProbeKey> = pools
            .iter()
            .flat_map(|p| {
                p.nodes.iter().map(|n| ProbeKey {
                    target: n.probe.clone(),
                    check: p.check.clone(),
                })
            })
            .collect();
        // The pool nodes each probe serves, known before any probe starts: a first result
        // (a refused connection comes back at once) is logged with them.
        let mut users: HashMap<ProbeKey, Vec<String>> = HashMap::new();
        for pool in pools {
            for node in &pool.nodes {
                let key = ProbeKey {
                    target: node.probe.clone(),
                    check: pool.check.clone(),
                };
                users
                    .entry(key)
                    .or_default()
                    .push(format!("{}/{}", pool.name, node.label));
            }
        }
        let (runtimes, started, kept, carried, stopped) = {
            let mut reg = self.registry();
            let mut old = std::mem::take(&mut reg.probes);
            let mut old_admin = std::mem::take(&mut reg.admin);
            let (mut started, mut kept, mut carried) = (0, 0, 0);
            let mut runtimes = Vec::with_capacity(pools.len());
            for pool in pools {
                let mut healths = Vec::with_capacity(pool.nodes.len());
                let mut admins = Vec::with_capacity(pool.nodes.len());
                for node in &pool.nodes {
                    let key = ProbeKey {
                        target: node.probe.clone(),
                        check: pool.check.clone(),
                    };
                    let health = if let Some(e) = reg.probes.get(&key) {
                        e.health.clone()
                    } else {
                        let entry = match old.remove(&key) {
                            Some(e) => {
                                kept += 1;
                                e
                            }
                            None => {
                                let e = match predecessor(&mut old, &wanted, &key) {
                                    Some((old_key, prev)) => {
                                        carried += 1;
                                        prev.health.set_users(users[&key].clone());
                                        self.carry(&key, &old_key, prev)
                                    }
                                    None => {
                                        started += 1;
                                        let h = Arc::new(NodeHealth::new(self.epoch));
                                        h.set_users(users[&key].clone());
                                        self.start(&key, h)
                                    }
                                };
                                if !*e.first.borrow() {
                                    waits.push((
                                        e.first.clone(),
                                        key.check.timeout + FIRST_RESULT_SLACK,
                                        key.clone(),
                                    ));
                                }
                                e
                            }
                        };
                        let h = entry.health.clone();
                        reg.probes.insert(key, entry);
                        h
                    };
                    healths.push(health);
                    let akey = NodeKey::new(&pool.name, node.addr);
                    let admin = match reg.admin.get(&akey) {
                        Some(a) => a.clone(),
                        None => {
                            let a = old_admin.remove(&akey).unwrap_or_default();
                            reg.admin.insert(akey, a.clone());
                            a
                        }
                    };
                    admins.push(admin);
                }
                runtimes.push(Arc::new(PoolRuntime::new(pool.clone(), healths, admins)));
            }
            // Kept probes serve the new list from now on.
            for (key, list) in users {
                if let Some(e) = reg.probes.get(&key) {
                    e.health.set_users(list);
                }
            }
            let stopped = old.len();
            for (key, e) in old {
                if let Some(t) = e.task {
                    t.abort();
                }
                tracing::info!(
                    target: "roundel::health",
                    node = %key.target.addr,
                    port = key.target.port,
                    check = key.check.kind.name(),
                    "probe stopped: no pool uses it any more"
                );
            }
            (runtimes, started, kept, carried, stopped)
        };
        // The probes run in their own tasks; waiting one after the other costs the
        // slowest first check, not the sum.
        let mut late = 0;
        for (mut rx, bound, key) in waits {
            let arrived = matches!(
                tokio::time::timeout(bound, rx.wait_for(|v| *v)).await,
                Ok(Ok(_))
            );
            if !arrived {
                late += 1;
                // Counted as down until then; say when the first result does arrive.
                tokio::spawn(async move {
                    if rx.wait_for(|v| *v).await.is_ok() {
                        tracing::info!(
                            target: "roundel::health",
                            node = %key.target.addr,
                            port = key.target.port,
                            check = key.check.kind.name(),
                            bound = ?bound,
                            "first check result arrived after the startup bound"
                        );
                    }
                });
            }
        }
        Reconciled {
            pools: runtimes,
            started,
            kept,
            carried,
            stopped,
            late,
        }
    }

    /// The probe of `key` taking over `prev`, the probe of the same target under the
    /// check `old_key` had: same state, history and counters; the old task stops.
    fn carry(&self, key: &ProbeKey, old_key: &ProbeKey, prev: ProbeEntry) -> ProbeEntry {
        if let Some(t) = prev.task {
            t.abort();
        }
        let same_probe = same_probe(old_key, key);
        if !same_probe {
            // What the node reported was an answer to the old check.
            prev.health.set_reported(None);
        }
        tracing::info!(
            target: "roundel::health",
            node = %key.target.addr,
            port = key.target.port,
            check = key.check.kind.name(),
            state = %prev.health.health(),
            "{}",
            if same_probe {
                "check timing or thresholds changed: node state kept"
            } else {
                "check changed: node state kept, the new check takes over with rise and fall"
            }
        );
        self.start(key, prev.health)
    }

    /// Starts the probe of `key` on `health`: from scratch when it has no state yet
    /// (the first result decides), else continuing from its state.
    fn start(&self, key: &ProbeKey, health: Arc<NodeHealth>) -> ProbeEntry {
        let (tx, rx) = watch::channel(false);
        let current = health.health();
        if key.check.kind == CheckKind::None {
            // Nothing to probe: up from the start, no task. A node that was down comes
            // back up with its slow start.
            let came_back = (current == Health::Down).then(Instant::now);
            if current != Health::Up {
                health.set_health(Health::Up, came_back);
            }
            let _ = tx.send(true);
            return ProbeEntry {
                health,
                task: None,
                first: rx,
            };
        }
        if current != Health::Unknown {
            let _ = tx.send(true);
        }
        // A random phase in [0, interval) spreads the checks of many targets over the
        // interval instead of firing them together on every tick.
        let interval = key.check.interval;
        let phase =
            Duration::from_nanos(self.jitter.hash_one(key) % (interval.as_nanos().max(1) as u64));
        let hook = self.hook.get().cloned();
        let caps = Caps {
            in_flight: self.in_flight.clone(),
            kept: self.kept.clone(),
        };
        let what = format!(
            "{} {}:{}",
            key.check.kind.name(),
            key.target.addr,
            key.target.port
        );
        let (k, h) = (key.clone(), health.clone());
        let mut first = Some(tx);
        let task = supervise(what, self.panics.clone(), move |_restarts| {
            // A restarted probe continues from the state the node has now.
            let machine = Hysteresis::resume(k.check.rise, k.check.fall, h.health());
            run_probe(
                k.clone(),
                h.clone(),
                machine,
                first.take(),
                phase,
                caps.clone(),
                hook.clone(),
            )
        });
        ProbeEntry {
            health,
            task: Some(task),
            first: rx,
        }
    }

    /// Check connections kept open between checks now (`reuse_connection`), and the
    /// most that may be.
    pub fn kept_connections(&self) -> (usize, usize) {
        (self.kept.held(), self.kept.max())
    }

    /// Probe tasks restarted after a panic, since start.
    pub fn probe_panics(&self) -> u64 {
        self.panics.load(Relaxed)
    }

    /// Probe tasks running now (`none` checks have none).
    pub fn probe_tasks(&self) -> usize {
        self.registry()
            .probes
            .values()
            .filter(|e| e.task.as_ref().is_some_and(|t| !t.is_finished()))
            .count()
    }

    /// Number of running probes (targets with `none` checks included).
    pub fn probe_count(&self) -> usize {
        self.registry().probes.len()
    }

    /// A snapshot of every probe, for the admin API and metrics.
    pub fn probes(&self) -> Vec<ProbeStatus> {
        self.registry()
            .probes
            .iter()
            .map(|(k, e)| ProbeStatus {
                key: k.clone(),
                health: e.health.health(),
                srtt: e.health.srtt(),
                detail: e.health.detail(),
            })
            .collect()
    }

    /// Stops every probe and waits (bounded) for the tasks to end.
    pub async fn shutdown(&self) {
        let _serial = self.reconcile_lock.lock().await;
        let tasks: Vec<JoinHandle<()>> = {
            let mut reg = self.registry();
            reg.admin.clear();
            reg.probes.drain().filter_map(|(_, e)| e.task).collect()
        };
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
        }
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        for e in self.registry().probes.values() {
            if let Some(t) = &e.task {
                t.abort();
            }
        }
    }
}

/// The old probe of the node `key` checks (same address) that `key` may take over: one
/// no pool needs any more, preferring the same probe (same target and kind of check:
/// only timing or thresholds changed).
fn predecessor(
    old: &mut HashMap<ProbeKey, ProbeEntry>,
    wanted: &HashSet<ProbeKey>,
    key: &ProbeKey,
) -> Option<(ProbeKey, ProbeEntry)> {
    let candidates = || {
        old.keys()
            .filter(|k| k.target.addr == key.target.addr && !wanted.contains(*k))
    };
    let found = candidates()
        .find(|k| same_probe(k, key))
        .or_else(|| candidates().next())
        .cloned()?;
    old.remove_entry(&found)
}

/// Whether two keys probe the same way (target and kind of check), whatever their
/// timing and thresholds.
fn same_probe(a: &ProbeKey, b: &ProbeKey) -> bool {
    a.target == b.target && a.check.kind == b.check.kind
}

/// The life of one probe: check at once (with a fresh machine the first result decides
/// the initial state), then every `interval` after a random `phase`, until aborted.
async fn run_probe(
    key: ProbeKey,
    health: Arc<NodeHealth>,
    machine: Hysteresis,
    first: Option<watch::Sender<bool>>,
    phase: Duration,
    caps: Caps,
    hook: Option<Arc<dyn ProbeHook>>,
) {
    let spec = key.check.clone();
    let source = hook.as_ref().and_then(|h| h.source());
    let prober = Prober::with_source(&spec, &key.target, source, &caps.kept);
    let mut task = ProbeTask {
        key,
        prober,
        health,
        // Fresh, or resumed from the probe this one replaces.
        machine,
        hook,
        local: Local::default(),
        in_flight: caps.in_flight,
    };
    if !task.check(true).await {
        return;
    }
    if let Some(first) = first {
        let _ = first.send(true);
    }
    let mut active = true;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + phase, spec.interval);
    // After a stall, keep the spacing rather than firing a burst of catch-up checks.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Some(h) = &task.hook {
            if !h.should_probe(&task.key) {
                active = false;
                continue;
            }
            if !active {
                // Taking over a share: the first result decides again, as at start,
                // rather than a stale run of results from before.
                task.machine = Hysteresis::new(spec.rise, spec.fall);
                task.local = Local::default();
                active = true;
            }
        }
        if !task.check(false).await {
            return;
        }
    }
}

/// The monitor's caps a probe task works within.
#[derive(Clone)]
struct Caps {
    in_flight: Arc<Semaphore>,
    kept: Arc<KeptConnections>,
}

/// What one probe task keeps from one check to the next.
struct ProbeTask {
    key: ProbeKey,
    prober: Prober,
    health: Arc<NodeHealth>,
    machine: Hysteresis,
    hook: Option<Arc<dyn ProbeHook>>,
    local: Local,
    in_flight: Arc<Semaphore>,
}

impl ProbeTask {
    /// One check and its result applied. A check runs only with a permit of the
    /// in-flight cap, so that many probes cannot open more sockets at once than the cap;
    /// the timeout covers the check, not the wait. `false` if no permit can be had (the
    /// semaphore is never closed, so in practice never).
    async fn check(&mut self, first: bool) -> bool {
        let Ok(permit) = self.in_flight.acquire().await else {
            return false;
        };
        let result = self.prober.run(self.key.check.timeout).await;
        drop(permit);
        record(
            &self.key,
            &self.health,
            &mut self.machine,
            result,
            self.hook.as_deref(),
            &mut self.local,
            first,
        );
        true
    }
}

/// This instance's own smoothed RTT, kept apart from the served one when a hook derives
/// the served state.
#[derive(Default)]
struct Local {
    srtt: Option<Duration>,
}

/// Applies one result: RTT, reported weight, state machine, details, and one log line
/// per state change.
fn record(
    key: &ProbeKey,
    health: &NodeHealth,
    machine: &mut Hysteresis,
    r: CheckResult,
    hook: Option<&dyn ProbeHook>,
    local: &mut Local,
    first: bool,
) {
    if let Some(e) = &r.local_error {
        // Not evidence against the backend: no state, counter or detail changes.
        super::local::note(&key.target.addr, key.target.port, e);
        return;
    }
    let ok = r.outcome.is_ok();
    health.observe_check(r.rtt, r.outcome.as_ref().err());
    let change = machine.record(ok);
    // Written out only when something reads it (a hook, a state change): not per check.
    let reason = || match &r.outcome {
        Ok(_) => "ok".to_owned(),
        Err(f) => f.to_string(),
    };
    if ok {
        // EWMA with gain 1/4, as the served RTT.
        local.srtt = Some(match local.srtt {
            None => r.rtt,
            Some(old) => (old * 3 + r.rtt) / 4,
        });
    }
    let apply = match hook {
        None => true,
        Some(h) => {
            let obs = LocalObservation {
                health: machine.health(),
                reason: reason(),
                rtt: r.rtt,
                srtt: local.srtt,
                reported: r.outcome.as_ref().ok().copied().flatten(),
                changed: change.is_some(),
            };
            h.observed(key, &obs) || first
        }
    };
    if apply {
        if let Ok(reported) = &r.outcome {
            health.add_rtt(r.rtt);
            // A passing check that reports no readable weight falls back to the configured one.
            health.set_reported(*reported);
        }
        let now = machine.health();
        if let Some((from, to)) = change {
            let came_back = (from == Health::Down && to == Health::Up).then(Instant::now);
            health.set_health(to, came_back);
        } else if now != Health::Unknown && health.health() != now {
            // The served state came from elsewhere (cluster view) until now.
            let came_back = (now == Health::Up).then(Instant::now);
            health.set_health(now, came_back);
        }
    }
    let (ok_run, fail_run) = machine.runs();
    let users = health.with_detail(|d| {
        d.checks += 1;
        d.failures += u64::from(!ok);
        d.last_failure = r.outcome.as_ref().err().cloned();
        d.last_check = Some(SystemTime::now());
        if ok {
            d.last_rtt = Some(r.rtt);
        }
        d.ok_run = ok_run;
        d.fail_run = fail_run;
        d.weight_error = r.weight_error.clone();
        let (from, to) = change?;
        d.transitions += 1;
        if d.history.len() == HISTORY_LEN {
            d.history.pop_front();
        }
        d.history.push_back(Transition {
            at: SystemTime::now(),
            from,
            to,
            reason: reason(),
        });
        Some(d.users.join(","))
    });
    // Logged outside the detail lock: a slow log sink must not hold up admin readers.
    if let (Some((from, to)), Some(pools)) = (change, users) {
        super::change_log::health_changed(key, &pools, from, to, &reason());
    }
}
