//! The HTTP handlers of the read and state-changing calls (everything but explain).

use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::admin::Admin;
use crate::admin::overrides::state_name;
use crate::admin::time::rfc3339;
use crate::node::AdminState;
use crate::node::NodeKey;
use crate::reload::Trigger;

use super::lookup::*;
use super::views::*;
use super::{Ctx, error, json};

pub(super) async fn cluster(State(admin): Ctx) -> Response {
    match admin.cluster.get() {
        Some(c) => json(&c.view()),
        None => error(
            StatusCode::NOT_FOUND,
            "not in cluster mode (no [cluster] section in the server configuration)",
        ),
    }
}

pub(super) async fn status(
    State(admin): Ctx,
    q: Result<
        axum::extract::Query<crate::admin::status_query::StatusQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let q = match q {
        Ok(axum::extract::Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    match crate::admin::status_query::status_page(&admin, &q) {
        Ok(page) => json(&page),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn zones(State(admin): Ctx) -> Response {
    let snapshot = admin.reloader.cell().load_full();
    let v: Vec<ZoneView> = snapshot
        .sorted_zones()
        .iter()
        .map(|z| zone_view(z))
        .collect();
    json(&v)
}

pub(super) async fn pools(
    State(admin): Ctx,
    q: Result<
        axum::extract::Query<crate::admin::status_query::PageQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let q = match q {
        Ok(axum::extract::Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    match crate::admin::status_query::pools_page(&admin, &q) {
        Ok((v, headers)) => (headers, json(&v)).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn pool(State(admin): Ctx, Path(name): Path<String>) -> Response {
    let snapshot = admin.reloader.cell().load_full();
    match find_pool(&snapshot, &name) {
        Ok((z, p)) => json(&pool_view(&admin, z, p)),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn node(
    State(admin): Ctx,
    Path((pool, node)): Path<(String, String)>,
) -> Response {
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

#[derive(Clone, Copy)]
pub(super) enum Change {
    State(AdminState),
    Weight(Option<u32>),
}

pub(super) async fn change(
    admin: &Admin,
    headers: &HeaderMap,
    pool: &str,
    node: &str,
    what: Change,
) -> Response {
    if let Err(e) = admin.authorize(headers) {
        return e.into_response();
    }
    let snapshot = admin.reloader.cell().load_full();
    let found = find_pool(&snapshot, pool).and_then(|(_, p)| Ok((p, find_node(p, node)?)));
    let (p, n) = match found {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let key = NodeKey::new(p.name(), n.spec.addr);
    let saved = admin
        .overrides
        .clone()
        .update_all_off_runtime(vec![key], move |o| match what {
            Change::State(s) => o.state = s,
            Change::Weight(w) => o.weight = w,
        })
        .await
        .map(|mut v| v.remove(0));
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

pub(super) async fn node_action(
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
    change(&admin, &headers, &pool, &node, Change::State(state)).await
}

pub(super) async fn set_weight(
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
    change(&admin, &headers, &pool, &node, Change::Weight(w)).await
}

pub(super) async fn clear_weight(
    State(admin): Ctx,
    headers: HeaderMap,
    Path((pool, node)): Path<(String, String)>,
) -> Response {
    change(&admin, &headers, &pool, &node, Change::Weight(None)).await
}

pub(super) async fn reload_status(State(admin): Ctx) -> Response {
    json(&reload_view(&admin.reloader.status()))
}

pub(super) async fn reload(State(admin): Ctx, headers: HeaderMap) -> Response {
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

pub(super) async fn query_log(State(_admin): Ctx) -> Response {
    json(&serde_json::json!({ "enabled": crate::dns::query_log() }))
}

pub(super) async fn set_query_log(State(admin): Ctx, headers: HeaderMap, body: Bytes) -> Response {
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
