//! Raw `[checks.*]` and `[pools.*]` tables as written in a zone file.
//!
//! These mirror the TOML one to one, with `deny_unknown_fields` so that a typo is an error
//! rather than a silently ignored setting, and `Spanned` wherever validation may need to
//! point at a value. Numbers are read as `i64` (TOML's integer type) so that range errors
//! come from our validation with a clear message instead of a serde overflow.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// One health check: a `[checks.NAME]` table, or the inline table of a pool's `check`.
///
/// Exactly one of `http`, `https`, `tcp`, `none` must be present.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Plain HTTP check.
    pub http: Option<Spanned<RawHttp>>,
    /// HTTP over TLS.
    pub https: Option<Spanned<RawHttp>>,
    /// TCP connect check.
    pub tcp: Option<Spanned<RawTcp>>,
    /// `none = true`: no probing, nodes are always up.
    pub none: Option<Spanned<bool>>,
    /// Time between two checks of one node (`"500ms"`).
    pub interval: Option<Spanned<String>>,
    /// Hard limit on one check; must be shorter than `interval`.
    pub timeout: Option<Spanned<String>>,
    /// Consecutive successes that bring a down node up.
    pub rise: Option<Spanned<i64>>,
    /// Consecutive failures that take an up node down.
    pub fall: Option<Spanned<i64>>,
}

/// Settings of an `http` or `https` check.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// TCP port (default 80 for http, 443 for https).
    pub port: Option<Spanned<i64>>,
    /// Request method (default `GET`).
    pub method: Option<Spanned<String>>,
    /// Request path and query (default `/`).
    pub path: Option<Spanned<String>>,
    /// `Host` header (default: the checked address).
    pub host: Option<Spanned<String>>,
    /// TLS server name (https only; default: `host` when it is a DNS name).
    pub sni: Option<Spanned<String>>,
    /// Accepted status codes: numbers or `"200-299"` ranges.
    pub expect: Option<Spanned<Vec<Spanned<RawStatus>>>>,
    /// A substring the body must contain.
    pub body: Option<Spanned<String>>,
    /// Extra request headers.
    pub headers: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    /// Most body bytes read.
    pub max_body: Option<Spanned<i64>>,
    /// Verify the server certificate (https only; default true).
    pub verify_tls: Option<Spanned<bool>>,
    /// Response header carrying the node's weight (agent-check style least load).
    pub weight_header: Option<Spanned<String>>,
    /// The body (its first number) carries the node's weight.
    pub weight_body: Option<Spanned<bool>>,
    /// Keep the connection between checks (http only; default false).
    pub reuse_connection: Option<Spanned<bool>>,
}

/// One entry of `expect`: a status code or a `"lo-hi"` range.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawStatus {
    /// `200`
    Code(i64),
    /// `"200-299"` (or `"204"`)
    Range(String),
}

/// Settings of a `tcp` check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    /// TCP port to connect to.
    pub port: Spanned<i64>,
    /// Not a TCP setting: read only to refuse it with a clearer error than an unknown key.
    pub reuse_connection: Option<Spanned<bool>>,
}

/// A pool's `check`: the name of a `[checks.NAME]` table, or an inline check table.
#[derive(Debug, Clone)]
pub enum RawCheckRef {
    /// `check = "web"`
    Named(String),
    /// `check = { tcp = { port = 22 } }`
    Inline(Box<RawCheck>),
}

impl<'de> Deserialize<'de> for RawCheckRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Not `#[serde(untagged)]`: untagged enums buffer their input, which loses the
        // spans that `Spanned` fields inside the inline table need.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCheckRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a check name or an inline check table")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawCheckRef::Named(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawCheck::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|c| RawCheckRef::Inline(Box::new(c)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `min_healthy`: a count (`2`), a fraction (`0.5`) or a percentage (`"50%"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawMinHealthy {
    /// A number of nodes.
    Count(i64),
    /// A fraction of the tier's nodes, in (0, 1].
    Fraction(f64),
    /// `"50%"`
    Text(String),
}

/// One `[pools.NAME]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    /// Name of a `[checks.*]` table, or an inline check.
    pub check: Option<Spanned<RawCheckRef>>,
    /// `round-robin` (default), `weighted`, `client-hash`, `fastest`.
    pub policy: Option<Spanned<String>>,
    /// TTL of answers, in seconds.
    pub ttl: Option<Spanned<i64>>,
    /// TTL while some nodes are down, in seconds.
    pub degraded_ttl: Option<Spanned<i64>>,
    /// Most addresses in one answer (1..=8).
    pub max_answers: Option<Spanned<i64>>,
    /// Healthy nodes a tier needs before it is used.
    pub min_healthy: Option<Spanned<RawMinHealthy>>,
    /// What to answer when no node is healthy.
    pub all_down: Option<Spanned<String>>,
    /// Ramp-up period for a node that has just come back.
    pub slow_start: Option<Spanned<String>>,
    /// The nodes.
    pub nodes: Option<Spanned<Vec<Spanned<RawNode>>>>,
}

/// One node: an address string, or a table.
#[derive(Debug, Clone)]
pub enum RawNode {
    /// `"192.0.2.10"`
    Addr(String),
    /// `{ addr = "192.0.2.12", weight = 3 }`
    Table(Box<RawNodeTable>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Hand-written for the same reason as `RawCheckRef`: keep spans inside the table.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an address string or a node table")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawNode::Addr(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawNodeTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| RawNode::Table(Box::new(t)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A node written as a table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNodeTable {
    /// Served address (IPv4 or IPv6).
    pub addr: Option<Spanned<String>>,
    /// Name for logs and the admin API (default: the address).
    pub label: Option<Spanned<String>>,
    /// Relative weight (default 1).
    pub weight: Option<Spanned<i64>>,
    /// Failover tier, 1 first (default 1).
    pub tier: Option<Spanned<i64>>,
    /// `maint = true`: configured but never handed out.
    pub maint: Option<Spanned<bool>>,
    /// Address to check instead of `addr` (NAT, VIP).
    pub check_addr: Option<Spanned<String>>,
    /// Port to check instead of the check's port.
    pub check_port: Option<Spanned<i64>>,
    /// Host header (and TLS name) for this node's check.
    pub check_host: Option<Spanned<String>>,
}
