//! `GET /api/v1/status` at any size: one pool, a page of pools, or a summary.
//!
//! The full document costs about 600 bytes a node; for 64,000 nodes that is 40 MB built
//! and sent on every poll, to whoever can reach the listener. So the full document is sent
//! only for small deployments (at most [`STATUS_FULL_MAX_NODES`] nodes) or when asked for
//! one page of pools; a larger deployment gets a summary by default: counts over every
//! node and one line per pool, a page at a time.
//!
//! | query | answer |
//! |---|---|
//! | (none), at most [`STATUS_FULL_MAX_NODES`] nodes | every pool in full, as always |
//! | (none), more nodes | `summary: true`: totals and the first page of pool summaries |
//! | `?pool=NAME` | that pool in full |
//! | `?page=N&limit=M` | pools `N*M ..` in full (`M` at most [`STATUS_PAGE_MAX`]) |
//! | `?summary=true` (with `page`, `limit`) | pool summaries (`limit` at most [`SUMMARY_PAGE_MAX`]) |
//!
//! `GET /api/v1/pools` (an array of full pools) pages the same way: every pool up to
//! [`STATUS_FULL_MAX_NODES`] nodes, else the page asked for (the first by default), with
//! `X-Total-Count` (pools) and a `Link: <...>; rel="next"` header while there are more.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::Admin;
use super::api::ApiError;
use super::api::lookup::{all_pools, find_pool};
use super::api::views::{PoolView, StatusView, pool_view, status_header};
use crate::node::PoolRuntime;
use crate::node::{AdminState, Health};

/// Largest deployment (in nodes) whose status is sent in full without asking.
pub const STATUS_FULL_MAX_NODES: usize = 1_000;
/// Pools per page of full pool views when `limit` is not given.
pub const STATUS_PAGE_DEFAULT: usize = 10;
/// Most pools per page of full pool views (64 nodes each: about 2 MB).
pub const STATUS_PAGE_MAX: usize = 50;
/// Pool summaries per page when `limit` is not given.
pub const SUMMARY_PAGE_DEFAULT: usize = 500;
/// Most pool summaries per page (about 200 bytes each).
pub const SUMMARY_PAGE_MAX: usize = 5_000;

/// The query string of `GET /api/v1/status`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// One pool, by name.
    pub pool: Option<String>,
    /// Page number, from 0.
    pub page: Option<usize>,
    /// Pools per page.
    pub limit: Option<usize>,
    /// Pool summaries instead of full pool views.
    pub summary: Option<bool>,
}

/// One pool in a line.
#[derive(Debug, Serialize)]
pub struct PoolSummary {
    /// Absolute name.
    pub name: String,
    /// Zone.
    pub zone: String,
    /// Selection policy.
    pub policy: &'static str,
    /// Nodes configured.
    pub nodes: usize,
    /// Up and not drained or in maintenance.
    pub serving: usize,
    /// Down by health checks.
    pub down: usize,
    /// Drained.
    pub drain: usize,
    /// In maintenance.
    pub maint: usize,
}

/// Node counts over the whole deployment.
#[derive(Debug, Default, Serialize)]
pub struct NodeTotals {
    /// Every node of every pool.
    pub nodes: usize,
    /// Serving.
    pub serving: usize,
    /// Down by health checks.
    pub down: usize,
    /// No check result yet.
    pub unknown: usize,
    /// Drained.
    pub drain: usize,
    /// In maintenance.
    pub maint: usize,
}

/// What part of the pools the document holds.
#[derive(Debug, Serialize)]
pub struct Paging {
    /// Pool summaries instead of full pools.
    pub summary: bool,
    /// Pools in the deployment.
    pub pools_total: usize,
    /// Node counts.
    pub totals: NodeTotals,
    /// Page number (absent: every pool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<usize>,
    /// Pools per page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Number of pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<usize>,
    /// The pool summaries of the page (summary mode).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pool_summaries: Vec<PoolSummary>,
}

/// The status document with its paging.
#[derive(Debug, Serialize)]
pub struct StatusPage {
    /// The document (its `pools` hold the page, or nothing in summary mode).
    #[serde(flatten)]
    pub status: StatusView,
    /// What part of the pools it holds.
    #[serde(flatten)]
    pub paging: Paging,
}

/// Serving, down, unknown, drained and in maintenance nodes of a pool (the `state` of
/// the full node view, counted).
fn counts(pool: &PoolRuntime) -> (usize, usize, usize, usize, usize) {
    let (mut serving, mut down, mut unknown, mut drain, mut maint) = (0, 0, 0, 0, 0);
    for n in pool.nodes() {
        let a = n.admin.state();
        if n.spec.maint || a == AdminState::Maint {
            maint += 1;
        } else if a == AdminState::Drain {
            drain += 1;
        } else {
            match n.health.health() {
                Health::Up => serving += 1,
                Health::Down => down += 1,
                Health::Unknown => unknown += 1,
            }
        }
    }
    (serving, down, unknown, drain, maint)
}

impl Paging {
    /// Every pool asked for (or one by name) in full, not a page.
    fn whole(pools_total: usize, totals: NodeTotals) -> Self {
        Paging {
            summary: false,
            pools_total,
            totals,
            page: None,
            limit: None,
            pages: None,
            pool_summaries: Vec::new(),
        }
    }
}

/// Builds the answer to `GET /api/v1/status?...`.
pub fn status_page(admin: &Admin, q: &StatusQuery) -> Result<StatusPage, ApiError> {
    let snapshot = admin.reloader.cell().load_full();
    let all = all_pools(&snapshot);
    let mut totals = NodeTotals::default();
    let mut per_pool = Vec::with_capacity(all.len());
    for (_, p) in &all {
        let c = counts(p);
        totals.nodes += p.nodes().len();
        totals.serving += c.0;
        totals.down += c.1;
        totals.unknown += c.2;
        totals.drain += c.3;
        totals.maint += c.4;
        per_pool.push(c);
    }
    let pools_total = all.len();
    let mut status = status_header(admin, &snapshot);

    if let Some(name) = &q.pool {
        let (z, p) = find_pool(&snapshot, name)?;
        status.pools = vec![pool_view(admin, z, p)];
        return Ok(StatusPage {
            status,
            paging: Paging::whole(pools_total, totals),
        });
    }

    let asked_page = q.page.is_some() || q.limit.is_some();
    let big = totals.nodes > STATUS_FULL_MAX_NODES;
    let summary = q.summary.unwrap_or(big && !asked_page);
    if !summary && !asked_page && !big {
        status.pools = all.iter().map(|(z, p)| pool_view(admin, z, p)).collect();
        return Ok(StatusPage {
            status,
            paging: Paging::whole(pools_total, totals),
        });
    }
    let (default, max) = if summary {
        (SUMMARY_PAGE_DEFAULT, SUMMARY_PAGE_MAX)
    } else {
        (STATUS_PAGE_DEFAULT, STATUS_PAGE_MAX)
    };
    let w = window(q.page, q.limit, default, max, pools_total)?;
    let (page, limit, pages, range) = (w.page, w.limit, w.pages, w.range);
    let mut pool_summaries = Vec::new();
    if summary {
        pool_summaries = range
            .map(|i| {
                let (z, p) = all[i];
                let c = per_pool[i];
                PoolSummary {
                    name: p.name().to_ascii(),
                    zone: z.origin.to_ascii(),
                    policy: p.spec().policy.as_str(),
                    nodes: p.nodes().len(),
                    serving: c.0,
                    down: c.1,
                    drain: c.3,
                    maint: c.4,
                }
            })
            .collect();
    } else {
        status.pools = all[range]
            .iter()
            .map(|(z, p)| pool_view(admin, z, p))
            .collect::<Vec<PoolView>>();
    }
    Ok(StatusPage {
        status,
        paging: Paging {
            summary,
            pools_total,
            totals,
            page: Some(page),
            limit: Some(limit),
            pages: Some(pages),
            pool_summaries,
        },
    })
}

/// One page of a list of pools.
struct Window {
    page: usize,
    limit: usize,
    pages: usize,
    range: std::ops::Range<usize>,
}

/// The page `page` (default 0) of `limit` (default `default`, at most `max`) pools out of
/// `total`; a request outside the list is a 400 saying what is valid.
fn window(
    page: Option<usize>,
    limit: Option<usize>,
    default: usize,
    max: usize,
    total: usize,
) -> Result<Window, ApiError> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > max {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit must be from 1 to {max}"),
        ));
    }
    let page = page.unwrap_or(0);
    let pages = total.div_ceil(limit).max(1);
    if page >= pages {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("page must be below {pages} ({total} pools, {limit} a page)"),
        ));
    }
    Ok(Window {
        page,
        limit,
        pages,
        range: page * limit..((page + 1) * limit).min(total),
    })
}

/// The query string of `GET /api/v1/pools`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page number, from 0.
    pub page: Option<usize>,
    /// Pools per page.
    pub limit: Option<usize>,
}

/// Builds the answer to `GET /api/v1/pools?...`: the pools and the paging headers.
pub fn pools_page(
    admin: &Admin,
    q: &PageQuery,
) -> Result<(Vec<PoolView>, axum::http::HeaderMap), ApiError> {
    let snapshot = admin.reloader.cell().load_full();
    let all = all_pools(&snapshot);
    let nodes: usize = all.iter().map(|(_, p)| p.nodes().len()).sum();
    let mut headers = axum::http::HeaderMap::new();
    let total = all.len();
    headers.insert("x-total-count", total.into());
    if q.page.is_none() && q.limit.is_none() && nodes <= STATUS_FULL_MAX_NODES {
        let v = all.iter().map(|(z, p)| pool_view(admin, z, p)).collect();
        return Ok((v, headers));
    }
    let w = window(q.page, q.limit, STATUS_PAGE_DEFAULT, STATUS_PAGE_MAX, total)?;
    let (page, limit, pages, range) = (w.page, w.limit, w.pages, w.range);
    if page + 1 < pages
        && let Ok(v) = axum::http::HeaderValue::from_str(&format!(
            "</api/v1/pools?page={}&limit={limit}>; rel=\"next\"",
            page + 1
        ))
    {
        headers.insert(axum::http::header::LINK, v);
    }
    let v = all[range]
        .iter()
        .map(|(z, p)| pool_view(admin, z, p))
        .collect();
    Ok((v, headers))
}
