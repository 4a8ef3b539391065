//! Nodes by address, across every pool: what an operator stopping a machine needs.
//!
//! An operator takes a machine down by its address, not pool by pool. `GET
//! /api/v1/nodes/{addr}` shows the address in every pool that lists it, and `POST
//! /api/v1/nodes/{addr}/{drain|maint|ready}` changes it in all of them at once, with one
//! "safe to stop at": the latest time any pool's cached answers may still name it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::admin::Admin;
use crate::admin::overrides::state_name;
use crate::admin::time::rfc3339;
use crate::node::{AdminState, NodeRuntime, PoolRuntime};
use crate::zone::Snapshot;

use super::lookup::all_pools;
use super::views::{NodeView, cached_until, node_view};
use super::{ApiError, Ctx, json};

/// The address in one pool.
#[derive(Debug, Serialize)]
pub struct PoolNodeView {
    /// Pool name.
    pub pool: String,
    /// The node in that pool.
    pub node: NodeView,
}

/// An address across every pool that lists it.
#[derive(Debug, Serialize)]
pub struct MachineView {
    /// What happened (for a change), or a summary.
    pub message: String,
    /// The address.
    pub addr: IpAddr,
    /// Every pool listing it, in a stable order.
    pub pools: Vec<PoolNodeView>,
    /// The latest time any of these pools' cached answers may name the address.
    pub safe_to_stop_at: String,
    /// Out of every pool's new answers (drain or maint everywhere) and no cached answer
    /// names it any more.
    pub safe_to_stop: bool,
}

/// Every (pool, node) serving `addr`.
fn nodes_at(snapshot: &Snapshot, addr: IpAddr) -> Vec<(&PoolRuntime, &NodeRuntime)> {
    all_pools(snapshot)
        .into_iter()
        .flat_map(|(_, p)| {
            p.nodes()
                .iter()
                .filter(move |n| n.spec.addr == addr)
                .map(move |n| (&**p, n))
        })
        .collect()
}

/// The address in an API path, with the snapshot in which some pool lists it.
fn listed(admin: &Admin, text: &str) -> Result<(IpAddr, Arc<Snapshot>), ApiError> {
    let addr: IpAddr = text.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{text:?} is not an IP address; for a node by label use /api/v1/pools/{{pool}}/nodes/{{node}}"),
        )
    })?;
    let snapshot = admin.reloader.cell().load_full();
    if nodes_at(&snapshot, addr).is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no pool lists the address {addr}"),
        ));
    }
    Ok((addr, snapshot))
}

fn view(
    admin: &Admin,
    addr: IpAddr,
    found: &[(&PoolRuntime, &NodeRuntime)],
    message: String,
) -> MachineView {
    let until = found
        .iter()
        .map(|(p, n)| cached_until(admin, p, n))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let pools: Vec<PoolNodeView> = found
        .iter()
        .map(|(p, n)| PoolNodeView {
            pool: p.name().to_ascii(),
            node: node_view(admin, p, n),
        })
        .collect();
    let safe_to_stop = pools.iter().all(|v| v.node.safe_to_stop);
    MachineView {
        message,
        addr,
        pools,
        safe_to_stop_at: rfc3339(until),
        safe_to_stop,
    }
}

/// `GET /api/v1/nodes/{addr}`.
pub(super) async fn machine(State(admin): Ctx, Path(addr): Path<String>) -> Response {
    let (addr, snapshot) = match listed(&admin, &addr) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let found = nodes_at(&snapshot, addr);
    let message = format!("{addr} is in {} pool(s)", found.len());
    json(&view(&admin, addr, &found, message))
}

/// `POST /api/v1/nodes/{addr}/{drain|maint|ready}`.
pub(super) async fn machine_action(
    State(admin): Ctx,
    headers: HeaderMap,
    Path((addr, action)): Path<(String, String)>,
) -> Response {
    if let Err(e) = admin.authorize(&headers) {
        return e.into_response();
    }
    let state = match action.as_str() {
        "drain" => AdminState::Drain,
        "maint" => AdminState::Maint,
        "ready" => AdminState::Ready,
        _ => {
            return super::error(
                StatusCode::NOT_FOUND,
                &format!("unknown action {action:?}: drain, maint or ready"),
            );
        }
    };
    let (addr, snapshot) = match listed(&admin, &addr) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let found = nodes_at(&snapshot, addr);
    let keys = found
        .iter()
        .map(|(p, n)| crate::node::NodeKey::new(p.name(), n.spec.addr))
        .collect();
    // One write of the state file for every pool, all or nothing, off the runtime.
    let saved = admin
        .overrides
        .clone()
        .update_all_off_runtime(keys, move |o| o.state = state)
        .await;
    let saved = match saved {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot save the state file; nothing changed");
            return super::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot save the state file, nothing changed: {e}"),
            );
        }
    };
    let mut changed = Vec::with_capacity(found.len());
    for ((p, n), o) in found.iter().zip(saved) {
        n.admin.set_state(o.state);
        n.admin.set_weight(o.weight);
        changed.push(p.name().to_ascii());
    }
    tracing::info!(
        target: "roundel::admin",
        %addr,
        state = state_name(state),
        pools = %changed.join(","),
        "admin override changed for an address in every pool"
    );
    let pools = changed.join(", ");
    let message = match state {
        AdminState::Drain => {
            let v = view(&admin, addr, &found, String::new());
            let until = found
                .iter()
                .map(|(p, n)| cached_until(&admin, p, n))
                .max()
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let wait = until
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            if v.safe_to_stop || wait.is_zero() {
                format!(
                    "{addr} drained in {pools}: no longer in new answers; no cached answer names it any more, it is safe to stop"
                )
            } else {
                format!(
                    "{addr} drained in {pools}: no longer in new answers; answers naming it may be cached until {} (in {:.1} s): safe to stop after that",
                    rfc3339(until),
                    wait.as_secs_f64()
                )
            }
        }
        AdminState::Maint => {
            format!("{addr} in maintenance in {pools}: never handed out, whatever its checks say")
        }
        AdminState::Ready => {
            format!("{addr} ready in {pools}: handed out when its checks pass")
        }
    };
    json(&view(&admin, addr, &found, message))
}
