//! What the API shows: the JSON views of zones, pools, nodes, reloads and the whole
//! status document, built from the served snapshot.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::admin::Admin;
use crate::admin::overrides::state_name;
use crate::admin::time::rfc3339;
use crate::node::NodeKey;
use crate::node::{AdminState, NodeRuntime, PoolRuntime};
use crate::pool::MinHealthy;
use crate::reload::ReloadStatus;
use crate::zone::{Snapshot, Zone};

use super::lookup::*;

/// One state change of a node's health.
#[derive(Debug, Serialize)]
pub struct TransitionView {
    /// When.
    pub at: String,
    /// From.
    pub from: &'static str,
    /// To.
    pub to: &'static str,
    /// The check result that caused it.
    pub reason: String,
}

/// A node as the API shows it.
#[derive(Debug, Serialize)]
pub struct NodeView {
    /// Label (the address unless configured).
    pub label: String,
    /// Served address.
    pub addr: IpAddr,
    /// Failover tier.
    pub tier: u8,
    /// What an operator reads first: `maint`, `drain`, else the health (`up`, `down`,
    /// `unknown`).
    pub state: &'static str,
    /// Health from the checks.
    pub health: &'static str,
    /// Admin override: `ready`, `drain` or `maint`.
    pub admin: &'static str,
    /// `maint = true` in the zone file.
    pub configured_maint: bool,
    /// Configured weight.
    pub weight: u32,
    /// Admin weight override.
    pub weight_override: Option<u32>,
    /// Weight the node reports about itself (`7` or `50%`).
    pub reported_weight: Option<String>,
    /// The weight selection uses when the node is usable (before slow start).
    pub effective_weight: u32,
    /// The check and where it connects (`http 127.0.0.1:8080`).
    pub check: String,
    /// Time of the last health transition.
    pub since: Option<String>,
    /// When the last check finished.
    pub last_check: Option<String>,
    /// Why the last check failed; `null` when it passed.
    pub last_failure: Option<String>,
    /// Round-trip time of the last successful check, ms; absent while the node is not up
    /// (an old figure would read as current).
    pub rtt_ms: Option<f64>,
    /// Smoothed check RTT, ms; absent while the node is not up.
    pub srtt_ms: Option<f64>,
    /// Checks run.
    pub checks: u64,
    /// Checks failed.
    pub failures: u64,
    /// The latest health transitions, newest first.
    pub transitions: Vec<TransitionView>,
    /// When an answer last named the node (since this process started).
    pub last_served: Option<String>,
    /// Until when some resolver may still hold an answer naming the node.
    pub cached_until: String,
    /// Not handed out (drain or maint) and no cached answer names it any more.
    pub safe_to_stop: bool,
    /// When the admin override was set.
    pub override_since: Option<String>,
    /// The last hour, oldest first, one letter per `timeline_step_s` of the pool (`u` up,
    /// `d` down, `?` unknown, `r` drain, `m` maint); the last letter is now.
    pub timeline: String,
    /// Answers naming the node over about the last hour, estimated from one answer in 64;
    /// the status page shows each node's share of its pool's total.
    pub recent_answers: u64,
}

/// A pool as the API shows it.
#[derive(Debug, Serialize)]
pub struct PoolView {
    /// Absolute name.
    pub name: String,
    /// Zone it belongs to.
    pub zone: String,
    /// Selection policy.
    pub policy: &'static str,
    /// Answer TTL.
    pub ttl: u32,
    /// TTL while degraded.
    pub degraded_ttl: u32,
    /// Most addresses per answer.
    pub max_answers: u8,
    /// Healthy nodes a tier needs.
    pub min_healthy: String,
    /// What happens with every node down.
    pub all_down: &'static str,
    /// Check kind.
    pub check: &'static str,
    /// Check interval, ms.
    pub check_interval_ms: u64,
    /// Nodes that are up and not drained or in maintenance.
    pub serving: usize,
    /// How the pool answers now: normal, degraded, failing over, or all down and what is
    /// handed out then; with the TTL in force.
    pub answering: crate::policy::answering::Answering,
    /// Seconds per letter of each node's `timeline`.
    pub timeline_step_s: u64,
    /// The nodes, in file order.
    pub nodes: Vec<NodeView>,
}

/// A zone as the API shows it.
#[derive(Debug, Serialize)]
pub struct ZoneView {
    /// Origin.
    pub origin: String,
    /// File it was loaded from.
    pub file: String,
    /// SOA serial.
    pub serial: u32,
    /// Owner names (empty non-terminals included).
    pub names: usize,
    /// Names of its pools.
    pub pools: Vec<String>,
}

/// One zone file problem.
#[derive(Debug, Serialize)]
pub struct ErrorView {
    /// File.
    pub file: String,
    /// Line (0: the whole file).
    pub line: usize,
    /// Column.
    pub column: usize,
    /// TOML key.
    pub key: String,
    /// What is wrong.
    pub reason: String,
    /// `file:line:column: key: reason`.
    pub text: String,
}

/// The last reload.
#[derive(Debug, Serialize)]
pub struct LastReloadView {
    /// When it finished.
    pub at: String,
    /// `startup`, `watch`, `signal`, `api`.
    pub trigger: &'static str,
    /// Whether the new zones are served.
    pub ok: bool,
    /// Generation served afterwards.
    pub generation: u64,
    /// Every problem found (empty on success).
    pub errors: Vec<ErrorView>,
}

/// Reload counters and the last outcome.
#[derive(Debug, Serialize)]
pub struct ReloadView {
    /// Reloads attempted (the startup load included).
    pub total: u64,
    /// Reloads rejected.
    pub failed: u64,
    /// Last successful load.
    pub last_success: Option<String>,
    /// Last reload.
    pub last: Option<LastReloadView>,
}

/// `GET /api/v1/status`.
#[derive(Debug, Serialize)]
pub struct StatusView {
    /// Roundel version.
    pub version: &'static str,
    /// Start time.
    pub started: String,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// Snapshot generation served.
    pub generation: u64,
    /// Per-query logging on.
    pub query_log: bool,
    /// Whether state-changing calls are possible (a token is configured).
    pub writable: bool,
    /// State file of the overrides, if persisted.
    pub state_file: Option<String>,
    /// Reloads.
    pub reload: ReloadView,
    /// Zones.
    pub zones: Vec<ZoneView>,
    /// Pools.
    pub pools: Vec<PoolView>,
    /// Cluster mode: members, observers and their reports, degraded state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::cluster::status::ClusterView>,
}

pub(super) fn reload_view(s: &ReloadStatus) -> ReloadView {
    ReloadView {
        total: s.total,
        failed: s.failed,
        last_success: s.last_success.map(rfc3339),
        last: s.last.as_ref().map(|l| LastReloadView {
            at: rfc3339(l.at),
            trigger: l.trigger.as_str(),
            ok: l.errors.is_empty(),
            generation: l.generation,
            errors: l
                .errors
                .iter()
                .map(|e| ErrorView {
                    file: e.file.display().to_string(),
                    line: e.line,
                    column: e.column,
                    key: e.key.clone(),
                    reason: e.reason.clone(),
                    text: e.to_string(),
                })
                .collect(),
        }),
    }
}

pub(super) fn zone_view(z: &Zone) -> ZoneView {
    ZoneView {
        origin: z.origin.to_ascii(),
        file: z.file.display().to_string(),
        serial: z.serial(),
        names: z.nodes.len(),
        pools: z.pools.iter().map(|p| p.spec.name.to_ascii()).collect(),
    }
}

pub(super) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The wall-clock time `offset` after a node's clock base.
pub(super) fn at_offset(node: &NodeRuntime, offset: Duration) -> SystemTime {
    crate::admin::time::wall(node.health.epoch() + offset)
}

/// Until when answers naming `node` may be cached: its recorded expiry, or, when it has
/// not been served by this process, start time + the pool's longest TTL (a previous
/// process may have served it just before it stopped).
pub(super) fn cached_until(admin: &Admin, pool: &PoolRuntime, node: &NodeRuntime) -> SystemTime {
    let spec = pool.spec();
    let fallback = admin.started + Duration::from_secs(spec.ttl.max(spec.degraded_ttl).into());
    let local = match node.admin.cached_until() {
        Some(off) => at_offset(node, off).max(fallback),
        None => fallback,
    };
    // In cluster mode the other instances' answers count too.
    let others = admin.cluster.get().and_then(|c| {
        c.others_cached_until(
            &crate::node::pool_key(&pool.name().to_ascii()),
            node.spec.addr,
        )
    });
    others.map_or(local, |o| o.max(local))
}

pub(super) fn node_view(admin: &Admin, pool: &PoolRuntime, node: &NodeRuntime) -> NodeView {
    let detail = node.health.detail();
    let health = node.health.health();
    let astate = node.admin.state();
    let state = node.state_name();
    let reported = node.health.reported();
    let effective_weight = node.base_weight();
    let until = cached_until(admin, pool, node);
    let key = NodeKey::new(pool.name(), node.spec.addr);
    let probe = &node.spec.probe;
    let check = match pool.spec().check.kind.name() {
        "none" => "none".to_owned(),
        kind => format!(
            "{kind} {}",
            std::net::SocketAddr::new(probe.addr, probe.port)
        ),
    };
    NodeView {
        label: node.spec.label.clone(),
        addr: node.spec.addr,
        tier: node.spec.tier,
        state,
        health: health.as_str(),
        admin: state_name(astate),
        configured_maint: node.spec.maint,
        weight: node.spec.weight,
        weight_override: node.admin.weight(),
        reported_weight: reported.map(|r| match r {
            crate::node::Reported::Weight(w) => w.to_string(),
            crate::node::Reported::Percent(p) => format!("{p}%"),
        }),
        effective_weight,
        check,
        since: detail.history.back().map(|t| rfc3339(t.at)),
        last_check: detail.last_check.map(rfc3339),
        last_failure: detail.last_failure.as_ref().map(|f| f.to_string()),
        rtt_ms: detail
            .last_rtt
            .filter(|_| health == crate::node::Health::Up)
            .map(ms),
        srtt_ms: node
            .health
            .srtt()
            .filter(|_| health == crate::node::Health::Up)
            .map(ms),
        checks: detail.checks,
        failures: detail.failures,
        transitions: detail
            .history
            .iter()
            .rev()
            .map(|t| TransitionView {
                at: rfc3339(t.at),
                from: t.from.as_str(),
                to: t.to.as_str(),
                reason: t.reason.clone(),
            })
            .collect(),
        last_served: node
            .admin
            .last_served()
            .map(|off| rfc3339(at_offset(node, off))),
        cached_until: rfc3339(until),
        safe_to_stop: (astate != AdminState::Ready || node.spec.maint)
            && SystemTime::now() >= until,
        override_since: admin.overrides.get(&key).map(|o| rfc3339(o.since)),
        timeline: {
            let mut t = admin
                .history
                .timeline(&pool.name().to_ascii(), node.spec.addr);
            t.push(crate::admin::history::letter(node) as char);
            t
        },
        recent_answers: admin.history.recent_answers(&pool.name().to_ascii(), node),
    }
}

pub(super) fn min_healthy(m: MinHealthy) -> String {
    match m {
        MinHealthy::Count(n) => n.to_string(),
        MinHealthy::Permille(p) => format!("{}%", p as f64 / 10.0),
    }
}

pub(crate) fn pool_view(admin: &Admin, zone: &Zone, pool: &PoolRuntime) -> PoolView {
    let spec = pool.spec();
    let nodes: Vec<NodeView> = pool
        .nodes()
        .iter()
        .map(|n| node_view(admin, pool, n))
        .collect();
    PoolView {
        name: spec.name.to_ascii(),
        zone: zone.origin.to_ascii(),
        policy: spec.policy.as_str(),
        ttl: spec.ttl,
        degraded_ttl: spec.degraded_ttl,
        max_answers: spec.max_answers,
        min_healthy: min_healthy(spec.min_healthy),
        all_down: spec.all_down.as_str(),
        check: spec.check.kind.name(),
        check_interval_ms: spec.check.interval.as_millis() as u64,
        serving: nodes.iter().filter(|n| n.state == "up").count(),
        answering: crate::policy::answering::answering(pool, std::time::Instant::now()),
        timeline_step_s: crate::admin::history::STEP.as_secs(),
        nodes,
    }
}
/// The whole status document.
pub fn status_view(admin: &Admin) -> StatusView {
    let snapshot = admin.reloader.cell().load_full();
    let mut v = status_header(admin, &snapshot);
    v.pools = all_pools(&snapshot)
        .into_iter()
        .map(|(z, p)| pool_view(admin, z, p))
        .collect();
    v
}

/// The status document without its pools.
pub(crate) fn status_header(admin: &Admin, snapshot: &Snapshot) -> StatusView {
    StatusView {
        version: env!("CARGO_PKG_VERSION"),
        started: rfc3339(admin.started),
        uptime_seconds: admin.started_instant.elapsed().as_secs_f64(),
        generation: snapshot.generation,
        query_log: crate::dns::query_log(),
        writable: admin.token.is_some(),
        state_file: admin.overrides.file().map(|p| p.display().to_string()),
        reload: reload_view(&admin.reloader.status()),
        zones: snapshot
            .sorted_zones()
            .iter()
            .map(|z| zone_view(z))
            .collect(),
        pools: Vec::new(),
        cluster: admin.cluster.get().map(|c| c.view()),
    }
}
