//! Finding a pool and a node from the names in an API path.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::StatusCode;

use crate::node::pool_key;
use crate::node::{NodeRuntime, PoolRuntime};
use crate::zone::{Snapshot, Zone};

use super::ApiError;

/// Every pool with a runtime, with its zone, in a stable order.
pub fn all_pools(snapshot: &Snapshot) -> Vec<(&Zone, &Arc<PoolRuntime>)> {
    snapshot.pool_runtimes()
}

pub(crate) fn find_pool<'a>(
    snapshot: &'a Snapshot,
    name: &str,
) -> Result<(&'a Zone, &'a Arc<PoolRuntime>), ApiError> {
    let want = pool_key(name);
    all_pools(snapshot)
        .into_iter()
        .find(|(_, p)| pool_key(&p.name().to_ascii()) == want)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no pool named {want}")))
}

pub(super) fn find_node<'a>(
    pool: &'a PoolRuntime,
    node: &str,
) -> Result<&'a NodeRuntime, ApiError> {
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
