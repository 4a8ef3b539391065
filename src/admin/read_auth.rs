//! Optional authentication of reads (`GET`/`HEAD`: the status page, the API's reads,
//! `/metrics`).
//!
//! Reads are open by default, which is right on the loopback listener the server starts
//! with. When the admin listener is reachable from elsewhere, status and metrics tell an
//! attacker every backend address and its health, so reads can require a token:
//! `[admin] read_token` (a token that can only read), or `require_token_for_reads = true`
//! (reads need the admin token or the read token). The token goes in
//! `Authorization: Bearer TOKEN` (Prometheus `authorization`, `roundel ctl`, curl) or as
//! the password of HTTP Basic authentication, which a browser asks for and then sends
//! with the status page's own requests.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Admin, Token};

/// Who may read.
#[derive(Debug, Clone, Default)]
pub struct ReadAccess {
    /// A token that allows reads only.
    pub token: Option<Token>,
    /// Reads need a token (the read token or the admin token). Implied by `token`.
    pub required: bool,
}

impl ReadAccess {
    /// Whether reads need a token.
    pub fn required(&self) -> bool {
        self.required || self.token.is_some()
    }
}

/// The credential of a request: a bearer token (the scheme is case-insensitive, RFC 7235
/// section 2.1) or the password of Basic authentication (RFC 7617).
pub fn credential(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some(token) = super::bearer_credentials(v) {
        return Some(token.to_owned());
    }
    let (scheme, rest) = v.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(base64_decode(rest)?).ok()?;
        decoded.split_once(':').map(|(_, pass)| pass.to_owned())
    } else {
        None
    }
}

/// Standard base64 (RFC 4648 section 4), padding optional.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().take_while(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Middleware: lets reads through when they are open or carry a valid token; everything
/// else is left to the handlers (state-changing calls check the admin token themselves).
pub async fn guard(State(admin): State<Arc<Admin>>, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let access = admin.read_access();
    if !access.required() {
        return next.run(req).await;
    }
    let given = credential(req.headers());
    let ok = given.as_deref().is_some_and(|g| {
        access.token.as_ref().is_some_and(|t| t.matches(g))
            || admin.token.as_ref().is_some_and(|t| t.matches(g))
    });
    if ok {
        return next.run(req).await;
    }
    let mut r = super::api::error(
        StatusCode::UNAUTHORIZED,
        if given.is_some() {
            "wrong token"
        } else {
            "reads need a token on this server: send Authorization: Bearer <read or admin token>"
        },
    );
    let h = r.headers_mut();
    h.remove(header::WWW_AUTHENTICATE);
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"roundel\""),
    );
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"roundel\", charset=\"UTF-8\""),
    );
    r.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_bearer_and_basic() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(credential(&h).as_deref(), Some("abc"));
        // "user:s3cret"
        h.insert(
            header::AUTHORIZATION,
            "Basic dXNlcjpzM2NyZXQ=".parse().unwrap(),
        );
        assert_eq!(credential(&h).as_deref(), Some("s3cret"));
        h.insert(header::AUTHORIZATION, "Digest x".parse().unwrap());
        assert_eq!(credential(&h), None);
    }
}
