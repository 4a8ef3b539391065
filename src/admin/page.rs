//! The status page at `/`: one self-contained HTML document (no external script, style or
//! font: the network may be closed) that polls `/api/v1/status` every second and redraws
//! the pools, in the spirit of HAProxy's stats page.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The page (`status.html`, compiled in).
pub const STATUS_HTML: &str = include_str!("status.html");

/// `GET /`.
pub async fn status_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        STATUS_HTML,
    )
        .into_response()
}
