//! The JSON admin API under `/api/v1/`.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/api/v1/status` | everything below in one document (the status page polls it); `?pool=`, `?page=&limit=`, `?summary=` for large deployments ([`crate::admin::status_query`]) |
//! | GET | `/api/v1/zones` | zones: origin, file, serial, names, pools |
//! | GET | `/api/v1/pools` | pools and their nodes |
//! | GET | `/api/v1/pools/{pool}` | one pool |
//! | GET | `/api/v1/pools/{pool}/nodes/{node}` | one node (by label or address) |
//! | POST | `/api/v1/pools/{pool}/nodes/{node}/drain` | stop handing the node out |
//! | POST | `/api/v1/pools/{pool}/nodes/{node}/maint` | take it out whatever checks say |
//! | POST | `/api/v1/pools/{pool}/nodes/{node}/ready` | back to health checks |
//! | PUT | `/api/v1/pools/{pool}/nodes/{node}/weight` | `{"weight": N}`: weight override |
//! | DELETE | `/api/v1/pools/{pool}/nodes/{node}/weight` | clear the weight override |
//! | GET | `/api/v1/nodes/{addr}` | an address in every pool that lists it |
//! | POST | `/api/v1/nodes/{addr}/drain` (`maint`, `ready`) | the same, in every such pool, with one "safe to stop at" |
//! | GET | `/api/v1/reload` | reload counters and the last outcome with its errors |
//! | POST | `/api/v1/reload` | reload the zones now (200, or 422 with the errors) |
//! | GET | `/api/v1/explain?name=&type=&client=&ecs=` | the answer and why |
//! | GET, PUT | `/api/v1/query-log` | `{"enabled": bool}`: per-query logging |
//!
//! POST, PUT and DELETE need the bearer token (see [`super`]).
//!
//! One file per concept: [`views`] (what is shown), [`lookup`] (pools and nodes by name),
//! [`handlers`] (the calls), [`explain`] (the explain call).

pub mod explain;
pub mod handlers;
pub mod lookup;
pub mod machine;
pub mod views;

use explain::explain;
use handlers::{
    clear_weight, cluster, node, node_action, pool, pools, query_log, reload, reload_status,
    set_query_log, set_weight, status, zones,
};

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::admin::Admin;

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
        .route("/api/v1/nodes/{addr}", get(machine::machine))
        .route(
            "/api/v1/nodes/{addr}/{action}",
            post(machine::machine_action),
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

pub use explain::{
    AnswerView, ExplainView, PoolExplainView, RecordView, VerdictView, explain_query,
};
pub use lookup::all_pools;
pub use views::*;
