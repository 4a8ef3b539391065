//! The JSON admin API under `/api/v1/`.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/api/v1/status` | everything below in one document (the status page polls it) |
//! | GET | `/api/v1/zones` | zones: origin, file, serial, names, pools |
//! | GET | `/api/v1/pools` | pools and their nodes |
//! | GET | `/api/v1/pools/{pool}` | one pool |
//! | GET | `/api/v1/pools/{pool}/nodes/{node}` | one node (by label or address) |
//! | POST | `/api/v1/pools/{pool}/nodes/{node}/drain` | stop handing the node out |
//! | POST | `/api/v1/pools/{pool}/nodes/{node}/maint` | take it out whatever checks say |
//! | POST | `/api/v1/pools/{pool}/nodes/{node}/ready` | back to health checks |
//! | PUT | `/api/v1/pools/{pool}/nodes/{node}/weight` | `{"weight": N}`: weight override |
//! | DELETE | `/api/v1/pools/{pool}/nodes/{node}/weight` | clear the weight override |
//! | GET | `/api/v1/reload` | reload counters and the last outcome with its errors |
//! | POST | `/api/v1/reload` | reload the zones now (200, or 422 with the errors) |
//! | GET | `/api/v1/explain?name=&type=&client=&ecs=` | the answer and why |
//! | GET, PUT | `/api/v1/query-log` | `{"enabled": bool}`: per-query logging |
//!
//! POST, PUT and DELETE need the bearer token (see [`super`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;

use super::Admin;
use super::overrides::{pool_key, state_name};
use super::time::rfc3339;
use crate::answer::{self, Client, Owner, Question, Rr};
use crate::health::AdminState;
use crate::policy::{self, Family, NodeRuntime, Outcome, PoolRuntime, SelectInput, Verdict};
use crate::pool::MinHealthy;
use crate::reload::{ReloadStatus, Trigger};
use crate::zone::{Snapshot, Zone};

type Ctx = State<Arc<Admin>>;

/// The API routes (state: the [`Admin`]).
pub fn routes() -> Router<Arc<Admin>> {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/cluster", get(cluster))
        .route("/api/v1/zones", get(zones))
        .route("/api/v1/pools", get(pools))
        .route("/api/v1/pools/{pool}", get(pool))
        .route("/api/v1/pools/{pool}/nodes/{node}", get(node))
        .route(
            "/api/v1/pools/{pool}/nodes/{node}/{action}",
            post(node_action),
        )
        .route(
            "/api/v1/pools/{pool}/nodes/{node}/weight",
            axum::routing::put(set_weight).delete(clear_weight),
        )
        .route("/api/v1/reload", get(reload_status).post(reload))
        .route("/api/v1/explain", get(explain))
        .route("/api/v1/query-log", get(query_log).put(set_query_log))
}

/// A JSON error: `{"error": msg}` with `status`.
pub fn error(status: StatusCode, msg: &str) -> Response {
    let mut r = (status, axum::Json(serde_json::json!({ "error": msg }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"roundel\""),
        );
    }
    r
}

/// A failed API call: an HTTP status and a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, &self.message)
    }
}

fn json<T: Serialize>(v: &T) -> Response {
    axum::Json(v).into_response()
}

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
    /// Round-trip time of the last successful check, ms.
    pub rtt_ms: Option<f64>,
    /// Smoothed check RTT, ms.
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

fn reload_view(s: &ReloadStatus) -> ReloadView {
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

fn zone_view(z: &Zone) -> ZoneView {
    ZoneView {
        origin: z.origin.to_ascii(),
        file: z.file.display().to_string(),
        serial: z.serial(),
        names: z.nodes.len(),
        pools: z.pools.iter().map(|p| p.spec.name.to_ascii()).collect(),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The wall-clock time `offset` after a node's clock base.
fn at_offset(node: &NodeRuntime, offset: Duration) -> SystemTime {
    super::time::wall(node.health.epoch() + offset)
}

/// Until when answers naming `node` may be cached: its recorded expiry, or, when it has
/// not been served by this process, start time + the pool's longest TTL (a previous
/// process may have served it just before it stopped).
fn cached_until(admin: &Admin, pool: &PoolRuntime, node: &NodeRuntime) -> SystemTime {
    let spec = pool.spec();
    let fallback = admin.started + Duration::from_secs(spec.ttl.max(spec.degraded_ttl).into());
    let local = match node.admin.cached_until() {
        Some(off) => at_offset(node, off).max(fallback),
        None => fallback,
    };
    // In cluster mode the other instances' answers count too.
    let others = admin
        .cluster
        .get()
        .and_then(|c| c.others_cached_until(&pool_key(&pool.name().to_ascii()), node.spec.addr));
    others.map_or(local, |o| o.max(local))
}

fn node_view(admin: &Admin, pool: &PoolRuntime, node: &NodeRuntime) -> NodeView {
    let detail = node.health.detail();
    let health = node.health.health();
    let astate = node.admin.state();
    let state = if node.spec.maint || astate == AdminState::Maint {
        "maint"
    } else if astate == AdminState::Drain {
        "drain"
    } else {
        health.as_str()
    };
    let reported = node.health.reported();
    let effective_weight = node
        .admin
        .weight()
        .unwrap_or_else(|| reported.map_or(node.spec.weight, |r| r.apply(node.spec.weight)));
    let until = cached_until(admin, pool, node);
    let key = (pool_key(&pool.name().to_ascii()), node.spec.addr);
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
            crate::health::Reported::Weight(w) => w.to_string(),
            crate::health::Reported::Percent(p) => format!("{p}%"),
        }),
        effective_weight,
        check,
        since: detail.history.back().map(|t| rfc3339(t.at)),
        last_check: detail.last_check.map(rfc3339),
        last_failure: detail.last_failure.as_ref().map(|f| f.to_string()),
        rtt_ms: detail.last_rtt.map(ms),
        srtt_ms: node.health.srtt().map(ms),
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
    }
}

fn min_healthy(m: MinHealthy) -> String {
    match m {
        MinHealthy::Count(n) => n.to_string(),
        MinHealthy::Permille(p) => format!("{}%", p as f64 / 10.0),
    }
}

fn pool_view(admin: &Admin, zone: &Zone, pool: &PoolRuntime) -> PoolView {
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
        nodes,
    }
}

/// Every pool with a runtime, with its zone, in a stable order.
pub fn all_pools(snapshot: &Snapshot) -> Vec<(&Zone, &Arc<PoolRuntime>)> {
    snapshot
        .sorted_zones()
        .into_iter()
        .flat_map(|z| {
            z.pools
                .iter()
                .filter_map(move |p| p.runtime.as_ref().map(|rt| (&**z, rt)))
        })
        .collect()
}

fn find_pool<'a>(
    snapshot: &'a Snapshot,
    name: &str,
) -> Result<(&'a Zone, &'a Arc<PoolRuntime>), ApiError> {
    let want = pool_key(name);
    all_pools(snapshot)
        .into_iter()
        .find(|(_, p)| pool_key(&p.name().to_ascii()) == want)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no pool named {want}")))
}

fn find_node<'a>(pool: &'a PoolRuntime, node: &str) -> Result<&'a NodeRuntime, ApiError> {
    let addr = node.parse::<IpAddr>().ok();
    pool.nodes()
        .iter()
        .find(|n| n.spec.label == node)
        .or_else(|| addr.and_then(|a| pool.nodes().iter().find(|n| n.spec.addr == a)))
        .ok_or_else(|| {
            let known: Vec<&str> = pool.nodes().iter().map(|n| n.spec.label.as_str()).collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "pool {} has no node {node:?} (nodes: {})",
                    pool.name(),
                    known.join(", ")
                ),
            )
        })
}

/// The whole status document.
pub fn status_view(admin: &Admin) -> StatusView {
    let snapshot = admin.reloader.cell().load_full();
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
        pools: all_pools(&snapshot)
            .into_iter()
            .map(|(z, p)| pool_view(admin, z, p))
            .collect(),
        cluster: admin.cluster.get().map(|c| c.view()),
    }
}

async fn cluster(State(admin): Ctx) -> Response {
    match admin.cluster.get() {
        Some(c) => json(&c.view()),
        None => error(
            StatusCode::NOT_FOUND,
            "not in cluster mode (no [cluster] section in the server configuration)",
        ),
    }
}

async fn status(State(admin): Ctx) -> Response {
    json(&status_view(&admin))
}

async fn zones(State(admin): Ctx) -> Response {
    let snapshot = admin.reloader.cell().load_full();
    let v: Vec<ZoneView> = snapshot
        .sorted_zones()
        .iter()
        .map(|z| zone_view(z))
        .collect();
    json(&v)
}

async fn pools(State(admin): Ctx) -> Response {
    let snapshot = admin.reloader.cell().load_full();
    let v: Vec<PoolView> = all_pools(&snapshot)
        .into_iter()
        .map(|(z, p)| pool_view(&admin, z, p))
        .collect();
    json(&v)
}

async fn pool(State(admin): Ctx, Path(name): Path<String>) -> Response {
    let snapshot = admin.reloader.cell().load_full();
    match find_pool(&snapshot, &name) {
        Ok((z, p)) => json(&pool_view(&admin, z, p)),
        Err(e) => e.into_response(),
    }
}

async fn node(State(admin): Ctx, Path((pool, node)): Path<(String, String)>) -> Response {
    let snapshot = admin.reloader.cell().load_full();
    let result = find_pool(&snapshot, &pool)
        .and_then(|(_, p)| find_node(p, &node).map(|n| json(&node_view(&admin, p, n))));
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Answer of a state change: the node afterwards and a sentence for humans.
#[derive(Debug, Serialize)]
pub struct ChangeView {
    /// What happened, and for a drain, when the node is safe to stop.
    pub message: String,
    /// Pool name.
    pub pool: String,
    /// The node afterwards.
    pub node: NodeView,
}

enum Change {
    State(AdminState),
    Weight(Option<u32>),
}

fn change(admin: &Admin, headers: &HeaderMap, pool: &str, node: &str, what: Change) -> Response {
    if let Err(e) = admin.authorize(headers) {
        return e.into_response();
    }
    let snapshot = admin.reloader.cell().load_full();
    let found = find_pool(&snapshot, pool).and_then(|(_, p)| Ok((p, find_node(p, node)?)));
    let (p, n) = match found {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let key = (pool_key(&p.name().to_ascii()), n.spec.addr);
    let saved = admin.overrides.update(key, |o| match what {
        Change::State(s) => o.state = s,
        Change::Weight(w) => o.weight = w,
    });
    let o = match saved {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot save the state file; nothing changed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot save the state file, nothing changed: {e}"),
            );
        }
    };
    n.admin.set_state(o.state);
    n.admin.set_weight(o.weight);
    tracing::info!(
        target: "roundel::admin",
        pool = %p.name(),
        node = %n.spec.label,
        addr = %n.spec.addr,
        state = state_name(o.state),
        weight = ?o.weight,
        "admin override changed"
    );
    let view = node_view(admin, p, n);
    let message = match (what, o.state) {
        (Change::State(AdminState::Drain), _) => {
            let until = cached_until(admin, p, n);
            let wait = until
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            if wait.is_zero() {
                format!(
                    "{} drained: no longer in new answers; no cached answer names it any more, it is safe to stop",
                    n.spec.label
                )
            } else {
                format!(
                    "{} drained: no longer in new answers; answers naming it may be cached until {} (in {:.1} s): safe to stop after that",
                    n.spec.label,
                    rfc3339(until),
                    wait.as_secs_f64()
                )
            }
        }
        (Change::State(AdminState::Maint), _) => format!(
            "{} in maintenance: never handed out, whatever its checks say",
            n.spec.label
        ),
        (Change::State(AdminState::Ready), _) => format!(
            "{} ready: handed out when its checks pass (now {})",
            n.spec.label,
            n.health.health()
        ),
        (Change::Weight(Some(w)), _) => format!("{} weight set to {w}", n.spec.label),
        (Change::Weight(None), _) => format!(
            "{} weight override cleared (configured {})",
            n.spec.label, n.spec.weight
        ),
    };
    json(&ChangeView {
        message,
        pool: p.name().to_ascii(),
        node: view,
    })
}

async fn node_action(
    State(admin): Ctx,
    headers: HeaderMap,
    Path((pool, node, action)): Path<(String, String, String)>,
) -> Response {
    let state = match action.as_str() {
        "drain" => AdminState::Drain,
        "maint" => AdminState::Maint,
        "ready" => AdminState::Ready,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                &format!("unknown action {action:?}: drain, maint or ready"),
            );
        }
    };
    change(&admin, &headers, &pool, &node, Change::State(state))
}

async fn set_weight(
    State(admin): Ctx,
    headers: HeaderMap,
    Path((pool, node)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(e) = admin.authorize(&headers) {
        return e.into_response();
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        weight: Option<u32>,
    }
    let w = match serde_json::from_slice::<Body>(&body) {
        Ok(b) => b.weight,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"weight\": N}} (or null to clear): {e}"),
            );
        }
    };
    if w.is_some_and(|w| w > crate::pool::spec::MAX_WEIGHT) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("weight must be 0..={}", crate::pool::spec::MAX_WEIGHT),
        );
    }
    change(&admin, &headers, &pool, &node, Change::Weight(w))
}

async fn clear_weight(
    State(admin): Ctx,
    headers: HeaderMap,
    Path((pool, node)): Path<(String, String)>,
) -> Response {
    change(&admin, &headers, &pool, &node, Change::Weight(None))
}

async fn reload_status(State(admin): Ctx) -> Response {
    json(&reload_view(&admin.reloader.status()))
}

async fn reload(State(admin): Ctx, headers: HeaderMap) -> Response {
    if let Err(e) = admin.authorize(&headers) {
        return e.into_response();
    }
    tracing::info!("admin API: reloading zones");
    let result = admin.reloader.reload_by(Trigger::Api).await;
    let view = reload_view(&admin.reloader.status());
    let status = if result.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, axum::Json(view)).into_response()
}

async fn query_log(State(_admin): Ctx) -> Response {
    json(&serde_json::json!({ "enabled": crate::dns::query_log() }))
}

async fn set_query_log(State(admin): Ctx, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = admin.authorize(&headers) {
        return e.into_response();
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        enabled: bool,
    }
    match serde_json::from_slice::<Body>(&body) {
        Ok(b) => {
            crate::dns::set_query_log(b.enabled);
            tracing::info!(enabled = b.enabled, "admin API: per-query logging switched");
            json(&serde_json::json!({ "enabled": b.enabled }))
        }
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            &format!("expected {{\"enabled\": true|false}}: {e}"),
        ),
    }
}

/// One record of an explained answer.
#[derive(Debug, Serialize)]
pub struct RecordView {
    /// Owner.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL.
    pub ttl: u32,
    /// Data in presentation format.
    pub data: String,
}

/// The answer of an explain call.
#[derive(Debug, Serialize)]
pub struct AnswerView {
    /// Response code.
    pub rcode: String,
    /// AA flag.
    pub aa: bool,
    /// The zone that answered.
    pub zone: Option<String>,
    /// Answer section.
    pub answer: Vec<RecordView>,
    /// Authority section.
    pub authority: Vec<RecordView>,
    /// Additional section.
    pub additional: Vec<RecordView>,
    /// ECS scope prefix echoed.
    pub ecs_scope: u8,
}

/// One node's part in a pool decision.
#[derive(Debug, Serialize)]
pub struct VerdictView {
    /// Label.
    pub label: String,
    /// Address.
    pub addr: IpAddr,
    /// Tier.
    pub tier: u8,
    /// State as in [`NodeView::state`].
    pub state: &'static str,
    /// `selected`, `down`, `drained`, `maint`, `other-tier`, `weight-zero`,
    /// `other-family`, `cut-by-max-answers`, `slow-start`, `not-in-last-healthy`, `all-down`.
    pub verdict: &'static str,
    /// Position in the answer when selected (0 first).
    pub rank: Option<u8>,
    /// The reason in words.
    pub reason: String,
}

/// How a pool decided.
#[derive(Debug, Serialize)]
pub struct PoolExplainView {
    /// Pool name.
    pub pool: String,
    /// Policy.
    pub policy: &'static str,
    /// `A` or `AAAA`.
    pub family: &'static str,
    /// `answer`, `empty` or `servfail`.
    pub outcome: &'static str,
    /// The tier that answered (0: none).
    pub tier: u8,
    /// TTL of the answer.
    pub ttl: u32,
    /// Some node of the family is down (degraded TTL).
    pub degraded: bool,
    /// No node was usable: the `all_down` mode decided.
    pub all_down: bool,
    /// The pool's `all_down` mode.
    pub all_down_mode: &'static str,
    /// ECS scope the answer depends on.
    pub scope_prefix: u8,
    /// Every node, in file order.
    pub nodes: Vec<VerdictView>,
}

/// `GET /api/v1/explain`.
#[derive(Debug, Serialize)]
pub struct ExplainView {
    /// Question name (absolute).
    pub name: String,
    /// Question type.
    #[serde(rename = "type")]
    pub qtype: String,
    /// Client address assumed.
    pub client: IpAddr,
    /// ECS subnet assumed.
    pub ecs: Option<String>,
    /// The response Roundel gives.
    pub response: AnswerView,
    /// How each pool on the way decided.
    pub pools: Vec<PoolExplainView>,
}

fn record_views(section: &[Rr<'_>], qname: &Name) -> Vec<RecordView> {
    section
        .iter()
        .map(|rr| RecordView {
            name: match rr.owner {
                Owner::Query => qname.to_ascii(),
                Owner::Name(n, _) => n.to_ascii(),
            },
            rtype: rr.rtype.to_string(),
            ttl: rr.ttl,
            data: rr.rdata.data.to_string(),
        })
        .collect()
}

fn verdict_text(v: Verdict) -> (&'static str, Option<u8>, String) {
    match v {
        Verdict::Selected { rank } => (
            "selected",
            Some(rank),
            format!("in the answer at position {}", rank + 1),
        ),
        Verdict::Down => (
            "down",
            None,
            "health check failing (or no result yet)".into(),
        ),
        Verdict::Drained => ("drained", None, "drained by an operator".into()),
        Verdict::Maint => (
            "maint",
            None,
            "in maintenance (zone file or operator)".into(),
        ),
        Verdict::OtherTier { tier } => (
            "other-tier",
            None,
            format!("usable, but its tier {tier} is not the one answering"),
        ),
        Verdict::WeightZero => ("weight-zero", None, "effective weight is 0".into()),
        Verdict::OtherFamily => (
            "other-family",
            None,
            "address family does not match the query type".into(),
        ),
        Verdict::CutByMaxAnswers => (
            "cut-by-max-answers",
            None,
            "usable, but max_answers was reached".into(),
        ),
        Verdict::SlowStart => (
            "slow-start",
            None,
            "ramping up after coming back; skipped for this answer".into(),
        ),
        Verdict::NotInLastHealthy => (
            "not-in-last-healthy",
            None,
            "every node is down and it was not in the last healthy set".into(),
        ),
        Verdict::AllDown => (
            "all-down",
            None,
            "every node is down and all_down answers without addresses".into(),
        ),
    }
}

fn explain_pool(
    admin: &Admin,
    pool: &PoolRuntime,
    family: Family,
    client: &Client,
) -> PoolExplainView {
    let input = SelectInput {
        counter: pool.next_counter(),
        family,
        client: client.key(),
        now: Instant::now(),
    };
    let ex = policy::explain(pool, &input);
    let sel = ex.selection;
    let spec = pool.spec();
    PoolExplainView {
        pool: spec.name.to_ascii(),
        policy: spec.policy.as_str(),
        family: match family {
            Family::V4 => "A",
            Family::V6 => "AAAA",
        },
        outcome: match sel.outcome {
            Outcome::Answer => "answer",
            Outcome::Empty => "empty",
            Outcome::ServFail => "servfail",
        },
        tier: sel.tier,
        ttl: sel.ttl,
        degraded: sel.degraded,
        all_down: sel.all_down,
        all_down_mode: spec.all_down.as_str(),
        scope_prefix: sel.scope_prefix,
        nodes: pool
            .nodes()
            .iter()
            .zip(&ex.verdicts)
            .map(|(n, &v)| {
                let (verdict, rank, reason) = verdict_text(v);
                VerdictView {
                    label: n.spec.label.clone(),
                    addr: n.spec.addr,
                    tier: n.spec.tier,
                    state: node_view(admin, pool, n).state,
                    verdict,
                    rank,
                    reason,
                }
            })
            .collect(),
    }
}

/// Parses `198.51.100.0/24` (or a bare address: a full-length prefix).
fn parse_subnet(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/').unwrap_or((s, ""));
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = if p.is_empty() { max } else { p.parse().ok()? };
    (prefix <= max).then_some((addr, prefix))
}

/// Explains the answer to (`name`, `qtype`) for `client`.
pub fn explain_query(
    admin: &Admin,
    name: &str,
    qtype: &str,
    client: IpAddr,
    ecs: Option<&str>,
) -> Result<ExplainView, String> {
    let text = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    let qname = Name::from_ascii(&text).map_err(|e| format!("bad name {name:?}: {e}"))?;
    let qtype_parsed: RecordType = qtype
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("unknown type {qtype:?}"))?;
    let subnet = match ecs {
        Some(s) => Some(
            parse_subnet(s)
                .ok_or_else(|| format!("bad ECS subnet {s:?} (like 198.51.100.0/24)"))?,
        ),
        None => None,
    };
    let client_v = Client {
        addr: client,
        subnet,
    };
    let key = crate::zone::name::key_of(&qname);
    let snapshot = admin.reloader.cell().load_full();
    let resp = answer::answer(
        &snapshot,
        &Question {
            qname: &key,
            qtype: qtype_parsed,
            client: client_v,
        },
    );
    let view = AnswerView {
        rcode: crate::dns::wire::rcode_name(resp.rcode).to_owned(),
        aa: resp.authoritative,
        zone: resp.zone.map(|z| z.origin.to_ascii()),
        answer: record_views(&resp.answer, &qname),
        authority: record_views(&resp.authority, &qname),
        additional: record_views(&resp.additional, &qname),
        ecs_scope: resp.ecs_scope,
    };
    // The pools on the way: the name itself and every CNAME target in the answer.
    let mut names = vec![key.clone()];
    for rr in resp.answer.iter() {
        if let Some(t) = &rr.rdata.target
            && rr.rtype == RecordType::CNAME
        {
            names.push(t.clone());
        }
    }
    let mut pools = Vec::new();
    for k in &names {
        let Some(zone) = snapshot.find_zone(k) else {
            continue;
        };
        let Some(node) = zone.nodes.get(k) else {
            continue;
        };
        let Some(i) = node.pool else { continue };
        let Some(rt) = zone.pools[i].runtime.as_deref() else {
            continue;
        };
        let family = match qtype_parsed {
            RecordType::A => Family::V4,
            RecordType::AAAA => Family::V6,
            RecordType::ANY if node.rrsets.is_empty() => Family::V4,
            _ => continue,
        };
        pools.push(explain_pool(admin, rt, family, &client_v));
    }
    Ok(ExplainView {
        name: qname.to_ascii(),
        qtype: qtype_parsed.to_string(),
        client,
        ecs: subnet.map(|(a, p)| format!("{a}/{p}")),
        response: view,
        pools,
    })
}

async fn explain(State(admin): Ctx, Query(q): Query<BTreeMap<String, String>>) -> Response {
    for k in q.keys() {
        if !matches!(k.as_str(), "name" | "type" | "client" | "ecs") {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("unknown parameter {k:?}: name, type, client, ecs"),
            );
        }
    }
    let Some(name) = q.get("name") else {
        return error(StatusCode::BAD_REQUEST, "missing parameter: name");
    };
    let client = match q.get("client").map(|c| c.parse::<IpAddr>()) {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(Ok(a)) => a,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "client: not an IP address"),
    };
    let qtype = q.get("type").map_or("A", String::as_str);
    match explain_query(
        &admin,
        name,
        qtype,
        client,
        q.get("ecs").map(String::as_str),
    ) {
        Ok(v) => json(&v),
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}
