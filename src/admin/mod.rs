//! The operations surface: an HTTP listener (127.0.0.1:8053 by default) with
//!
//! * the admin API under `/api/v1/` ([`api`]): zones, pools and nodes as JSON; drain,
//!   maint, ready and weight overrides; reload; explain; per-query logging on/off;
//! * `/metrics` in the Prometheus / OpenMetrics text format ([`metrics`]);
//! * a live status page at `/` ([`page`]).
//!
//! Reads are open to whoever can reach the listener (loopback by default), unless a read
//! token is configured ([`read_auth`]). Every call that
//! changes state needs `Authorization: Bearer TOKEN` with the token from the server
//! configuration or `ROUNDEL_ADMIN_TOKEN`; with no token configured they are refused
//! (403), from the request headers before any body is read. Overrides are kept in a state file ([`overrides`]) and re-applied after every
//! reload and at startup.

pub mod api;
pub mod check_metrics;
pub mod exposition;
pub mod history;
pub mod listener;
pub mod metrics;
pub mod overrides;
pub mod page;
pub mod read_auth;
pub mod status_query;
pub mod time;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use crate::dns::stats::DnsStats;
use crate::reload::Reloader;
use crate::shutdown::Stopping;
use overrides::Overrides;

/// Default admin listener: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8053";
/// Environment variable holding the admin token.
pub const TOKEN_ENV: &str = "ROUNDEL_ADMIN_TOKEN";

/// A bearer token; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token from its text (surrounding whitespace removed); `None` when empty.
    pub fn new(text: &str) -> Option<Self> {
        let t = text.trim();
        (!t.is_empty()).then(|| Token(t.to_owned()))
    }

    /// Compares with `other` in time independent of where they differ (the length is
    /// not secret).
    fn matches(&self, other: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), other.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
    }

    /// The token text (for clients that send it).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Everything the admin side reads and changes.
pub struct Admin {
    /// The reloader: the served snapshot, the health monitor, reload status.
    pub reloader: Arc<Reloader>,
    /// Query counters.
    pub stats: Arc<DnsStats>,
    /// Overrides and their state file.
    pub overrides: Arc<Overrides>,
    token: Option<Token>,
    /// Who may read (set once at start, [`Admin::set_read_access`]).
    read_access: std::sync::OnceLock<read_auth::ReadAccess>,
    /// When the server started (wall clock).
    pub started: SystemTime,
    /// When the server started (monotonic).
    pub started_instant: Instant,
    /// Node state timelines and pool answering states, sampled off the query path.
    pub history: history::History,
    registry: prometheus_client::registry::Registry,
    /// Cluster mode, when configured (set once at start).
    pub cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// The admin side of one server.
    pub fn new(
        reloader: Arc<Reloader>,
        stats: Arc<DnsStats>,
        overrides: Arc<Overrides>,
        token: Option<Token>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|weak| {
            let mut registry = prometheus_client::registry::Registry::default();
            registry.register_collector(Box::new(metrics::Collector::new(weak.clone())));
            Admin {
                reloader,
                stats,
                overrides,
                token,
                read_access: std::sync::OnceLock::new(),
                started: SystemTime::now(),
                started_instant: Instant::now(),
                history: history::History::default(),
                registry,
                cluster: std::sync::OnceLock::new(),
            }
        })
    }

    /// Sets who may read; only the first call counts (at start, before serving).
    pub fn set_read_access(&self, access: read_auth::ReadAccess) {
        let _ = self.read_access.set(access);
    }

    /// Who may read.
    pub fn read_access(&self) -> read_auth::ReadAccess {
        self.read_access.get().cloned().unwrap_or_default()
    }

    /// Checks the bearer token of a state-changing request.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), api::ApiError> {
        let Some(token) = &self.token else {
            return Err(api::ApiError::new(
                StatusCode::FORBIDDEN,
                "state-changing calls are disabled: no admin token is configured \
                 (set [admin] token or token_file in the server configuration, or \
                 ROUNDEL_ADMIN_TOKEN, and restart)",
            ));
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_credentials);
        match given {
            Some(g) if token.matches(g) => Ok(()),
            Some(_) => Err(api::ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong admin token",
            )),
            None => Err(api::ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this call changes state: send Authorization: Bearer <admin token>",
            )),
        }
    }
}

/// The credentials of an `Authorization` header value with the `Bearer` scheme, which
/// is case-insensitive (RFC 7235 section 2.1; RFC 6750 section 2.1).
pub(crate) fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// Refuses a state-changing request (any method but GET, HEAD and OPTIONS) without the
/// right token from its headers alone, before its body is read: an unauthenticated
/// client cannot make the server buffer anything.
async fn require_token(
    axum::extract::State(admin): axum::extract::State<Arc<Admin>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method();
    if method != axum::http::Method::GET
        && method != axum::http::Method::HEAD
        && method != axum::http::Method::OPTIONS
        && let Err(e) = admin.authorize(request.headers())
    {
        return e.into_response();
    }
    next.run(request).await
}

/// The admin routes, with request bodies limited to `body_limit` bytes.
pub fn router(admin: Arc<Admin>, body_limit: usize) -> Router {
    Router::new()
        .route("/", axum::routing::get(page::status_page))
        .route("/metrics", axum::routing::get(metrics::handler))
        .merge(api::routes())
        .fallback(|| async {
            api::error(StatusCode::NOT_FOUND, "no such endpoint").into_response()
        })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            read_auth::guard,
        ))
        .with_state(admin)
}

/// Serves the admin routes on `listener` with `limits`, and samples the status page's
/// history, until the server stops.
pub async fn run(
    listener: tokio::net::TcpListener,
    admin: Arc<Admin>,
    limits: listener::AdminLimits,
    stop: Stopping,
) -> std::io::Result<()> {
    // The sampler ends at the same signal (or when the listener's side is gone).
    tokio::spawn(history::run(Arc::downgrade(&admin), stop.clone()));
    listener::serve(
        listener,
        router(admin, limits.body_limit),
        limits,
        stop.stopped(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::bearer_credentials;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_credentials("Bearer abc"), Some("abc"));
        assert_eq!(bearer_credentials("bearer abc"), Some("abc"));
        assert_eq!(bearer_credentials("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_credentials("Basic abc"), None);
        assert_eq!(bearer_credentials("Bearer"), None);
        assert_eq!(bearer_credentials("Bearerabc"), None);
    }
}
