//! Validation of raw `[checks.*]` / `[pools.*]` tables into [`PoolSpec`]s.
//!
//! Every problem is reported to the zone's [`SourceMap`] with the position of the offending
//! value and its key path (`pools.web.nodes[2].addr`); validation goes on after a problem
//! so that one load lists them all. A pool with any problem is left out of the result.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;
use toml::Spanned;

use super::duration::{format_duration, parse_duration};
use super::raw::{RawCheck, RawCheckRef, RawHttp, RawMinHealthy, RawNode, RawPool, RawStatus};
use super::spec::*;
use crate::source::SourceMap;

/// Validates the checks and pools of one zone whose origin is `origin`.
///
/// Pool keys are relative to the origin (`"web"`, `"web.eu"`, `"@"` for the origin
/// itself); a key ending with a dot is absolute and must be inside the origin. Checks that
/// no pool uses are still validated. Returns the valid pools in key order; each problem is
/// recorded in `map`.
pub fn validate(
    map: &mut SourceMap,
    origin: &Name,
    checks: BTreeMap<Spanned<String>, RawCheck>,
    pools: BTreeMap<Spanned<String>, RawPool>,
) -> Vec<PoolSpec> {
    // Named checks: `Some` when valid, `None` when present but broken (so pools using it
    // are not also told the name is unknown).
    let mut named: HashMap<String, Option<Arc<CheckSpec>>> = HashMap::new();
    for (name, raw) in &checks {
        let path = format!("checks.{}", key_seg(name.get_ref()));
        let spec = check(map, &path, name.span().start, raw).map(Arc::new);
        named.insert(name.get_ref().clone(), spec);
    }

    let mut out = Vec::new();
    let mut seen_names: HashMap<Name, String> = HashMap::new();
    for (key, raw) in &pools {
        let path = format!("pools.{}", key_seg(key.get_ref()));
        let at = key.span().start;
        let mut name = pool_name(map, &path, at, origin, key.get_ref());
        if let Some(n) = &name {
            if let Some(first) = seen_names.get(n) {
                map.report(
                    at,
                    &path,
                    format!("pool {n} is already defined as pools.{}", key_seg(first)),
                );
                name = None;
            } else {
                seen_names.insert(n.clone(), key.get_ref().clone());
            }
        }
        let spec = pool(map, &path, at, raw, &named);
        if let (Some(name), Some(mut spec)) = (name, spec) {
            spec.name = name;
            spec.key = key.get_ref().clone();
            out.push(spec);
        }
    }
    out
}

/// Quotes a TOML key segment unless it is a bare key.
fn key_seg(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

fn pool_name(map: &mut SourceMap, path: &str, at: usize, origin: &Name, key: &str) -> Option<Name> {
    let name = if key == "@" {
        Ok(origin.clone())
    } else if key.is_empty() {
        Err("empty pool name; use \"@\" for the zone origin".to_owned())
    } else {
        Name::from_ascii(key)
            .map_err(|e| format!("bad pool name {key:?}: {e}"))
            .and_then(|n| {
                if n.is_fqdn() {
                    Ok(n)
                } else {
                    n.append_domain(origin)
                        .map_err(|e| format!("bad pool name {key:?}: {e}"))
                }
            })
    };
    match name {
        Ok(n) if origin.zone_of(&n) => Some(n.to_lowercase()),
        Ok(n) => {
            map.report(
                at,
                path,
                format!("pool name {n} is outside the zone {origin}"),
            );
            None
        }
        Err(e) => {
            map.report(at, path, e);
            None
        }
    }
}

/// Tracks whether a table had any problem while still checking every field.
struct Ctx<'m, 'a> {
    map: &'m mut SourceMap<'a>,
    ok: bool,
}

impl Ctx<'_, '_> {
    fn err(&mut self, at: usize, key: &str, reason: impl Into<String>) {
        self.map.report(at, key, reason);
        self.ok = false;
    }

    /// An integer in `lo..=hi`, or `default` when absent.
    fn int<T: TryFrom<i64>>(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &str,
        lo: i64,
        hi: i64,
        default: T,
    ) -> T {
        match v {
            None => default,
            Some(s) => {
                let n = *s.get_ref();
                if n < lo || n > hi {
                    self.err(s.span().start, key, format!("must be {lo}..={hi}, not {n}"));
                    default
                } else {
                    T::try_from(n).unwrap_or(default)
                }
            }
        }
    }

    fn duration(&mut self, v: &Spanned<String>, key: &str) -> Option<Duration> {
        match parse_duration(v.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(v.span().start, key, e);
                None
            }
        }
    }
}

fn check(map: &mut SourceMap, path: &str, at: usize, raw: &RawCheck) -> Option<CheckSpec> {
    let mut cx = Ctx { map, ok: true };
    let kinds = [
        raw.http.as_ref().map(|s| s.span().start),
        raw.https.as_ref().map(|s| s.span().start),
        raw.tcp.as_ref().map(|s| s.span().start),
        raw.none.as_ref().map(|s| s.span().start),
    ];
    let count = kinds.iter().flatten().count();
    let mut kind = None;
    if count == 0 {
        cx.err(
            at,
            path,
            "a check needs exactly one of http, https, tcp or none = true",
        );
    } else if count > 1 {
        let mut starts: Vec<usize> = kinds.iter().flatten().copied().collect();
        starts.sort_unstable();
        let second = starts[1];
        cx.err(
            second,
            path,
            "a check has exactly one kind: http, https, tcp or none",
        );
    } else if let Some(h) = &raw.http {
        kind = http(&mut cx, &format!("{path}.http"), h.get_ref(), false)
            .map(|h| CheckKind::Http(Box::new(h)));
    } else if let Some(h) = &raw.https {
        kind = http(&mut cx, &format!("{path}.https"), h.get_ref(), true)
            .map(|h| CheckKind::Http(Box::new(h)));
    } else if let Some(t) = &raw.tcp {
        let port = Some(t.get_ref().port.clone());
        let p: u16 = cx.int(&port, &format!("{path}.tcp.port"), 1, 65535, 0);
        if let Some(r) = &t.get_ref().reuse_connection {
            cx.err(
                r.span().start,
                &format!("{path}.tcp.reuse_connection"),
                "reuse_connection applies to http checks only (a tcp check only connects)",
            );
        }
        kind = Some(CheckKind::Tcp { port: p });
    } else if let Some(n) = &raw.none {
        if *n.get_ref() {
            kind = Some(CheckKind::None);
        } else {
            cx.err(
                n.span().start,
                &format!("{path}.none"),
                "none = false is not a check; write none = true or choose http, https or tcp",
            );
        }
    }

    let interval = match &raw.interval {
        None => DEFAULT_INTERVAL,
        Some(v) => {
            let key = format!("{path}.interval");
            match cx.duration(v, &key) {
                Some(d) if d < MIN_INTERVAL || d > MAX_INTERVAL => {
                    cx.err(
                        v.span().start,
                        &key,
                        format!(
                            "interval must be {}..={}, not {}",
                            format_duration(MIN_INTERVAL),
                            format_duration(MAX_INTERVAL),
                            v.get_ref()
                        ),
                    );
                    DEFAULT_INTERVAL
                }
                Some(d) => d,
                None => DEFAULT_INTERVAL,
            }
        }
    };
    let timeout = match &raw.timeout {
        // The default timeout, unless the interval is too short for it.
        None if DEFAULT_TIMEOUT < interval => DEFAULT_TIMEOUT,
        None => interval / 2,
        Some(v) => {
            let key = format!("{path}.timeout");
            match cx.duration(v, &key) {
                Some(d) if d.is_zero() => {
                    cx.err(v.span().start, &key, "timeout must be more than 0");
                    DEFAULT_TIMEOUT
                }
                Some(d) if d >= interval => {
                    cx.err(
                        v.span().start,
                        &key,
                        format!(
                            "timeout {} must be shorter than the interval {}",
                            v.get_ref(),
                            format_duration(interval)
                        ),
                    );
                    d
                }
                Some(d) => d,
                None => DEFAULT_TIMEOUT,
            }
        }
    };
    let max = MAX_RISE_FALL as i64;
    let rise = cx.int(&raw.rise, &format!("{path}.rise"), 1, max, DEFAULT_RISE);
    let fall = cx.int(&raw.fall, &format!("{path}.fall"), 1, max, DEFAULT_FALL);
    match (cx.ok, kind) {
        (true, Some(kind)) => Some(CheckSpec {
            kind,
            interval,
            timeout,
            rise,
            fall,
        }),
        _ => None,
    }
}

/// Whether `s` can be sent as an HTTP header name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `s` can be sent as an HTTP header value.
fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// Whether `s` is a plausible host name (for Host and SNI).
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn http(cx: &mut Ctx, path: &str, raw: &RawHttp, tls: bool) -> Option<HttpCheck> {
    let ok_before = cx.ok;
    cx.ok = true;
    let default_port = if tls {
        DEFAULT_HTTPS_PORT
    } else {
        DEFAULT_HTTP_PORT
    };
    let port = cx.int(&raw.port, &format!("{path}.port"), 1, 65535, default_port);
    let method = match &raw.method {
        None => DEFAULT_METHOD.to_owned(),
        Some(m) => {
            let v = m.get_ref();
            if !is_token(v) || v.bytes().any(|b| b.is_ascii_lowercase()) {
                cx.err(
                    m.span().start,
                    &format!("{path}.method"),
                    format!("bad HTTP method {v:?}; write it upper-case, e.g. \"GET\""),
                );
            }
            v.clone()
        }
    };
    let path_v = match &raw.path {
        None => DEFAULT_PATH.to_owned(),
        Some(p) => {
            let v = p.get_ref();
            if !v.starts_with('/') || !v.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
                cx.err(
                    p.span().start,
                    &format!("{path}.path"),
                    format!(
                        "path must start with / and hold no spaces or control characters, not {v:?}"
                    ),
                );
            }
            v.clone()
        }
    };
    let host = host_value(cx, &raw.host, &format!("{path}.host"));
    let sni = match &raw.sni {
        None => None,
        Some(s) => {
            let key = format!("{path}.sni");
            if !tls {
                cx.err(s.span().start, &key, "sni applies to https checks only");
            } else if !is_host_name(s.get_ref()) {
                cx.err(
                    s.span().start,
                    &key,
                    format!("sni must be a DNS name, not {:?}", s.get_ref()),
                );
            }
            Some(s.get_ref().to_ascii_lowercase())
        }
    };
    let mut expect = Vec::new();
    match &raw.expect {
        None => expect.push(DEFAULT_EXPECT),
        Some(list) => {
            if list.get_ref().is_empty() {
                cx.err(
                    list.span().start,
                    &format!("{path}.expect"),
                    "expect needs at least one status code",
                );
            }
            for (i, item) in list.get_ref().iter().enumerate() {
                let key = format!("{path}.expect[{i}]");
                match status_range(item.get_ref()) {
                    Ok(r) => expect.push(r),
                    Err(e) => cx.err(item.span().start, &key, e),
                }
            }
        }
    }
    let body = raw.body.as_ref().map(|b| {
        if b.get_ref().is_empty() {
            cx.err(
                b.span().start,
                &format!("{path}.body"),
                "body substring is empty; remove the key to skip the body check",
            );
        }
        b.get_ref().clone()
    });
    let mut headers = Vec::new();
    for (name, value) in raw.headers.iter().flatten() {
        let n = name.get_ref().to_ascii_lowercase();
        let key = format!("{path}.headers.{}", key_seg(name.get_ref()));
        if !is_token(&n) {
            cx.err(name.span().start, &key, "not a valid header name");
        } else if matches!(
            n.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            cx.err(
                name.span().start,
                &key,
                format!("{n} is set by the check itself (use host / check_host for Host)"),
            );
        }
        if !is_header_value(value.get_ref()) {
            cx.err(
                value.span().start,
                &key,
                "header value holds control or non-ASCII characters",
            );
        }
        headers.push((n, value.get_ref().clone()));
    }
    let max_body = cx.int(
        &raw.max_body,
        &format!("{path}.max_body"),
        0,
        MAX_MAX_BODY as i64,
        DEFAULT_MAX_BODY,
    );
    let verify_tls = match &raw.verify_tls {
        None => true,
        Some(v) => {
            if !tls {
                cx.err(
                    v.span().start,
                    &format!("{path}.verify_tls"),
                    "verify_tls applies to https checks only",
                );
            }
            *v.get_ref()
        }
    };
    let reuse_connection = match &raw.reuse_connection {
        None => DEFAULT_REUSE_CONNECTION,
        Some(v) => {
            if tls {
                cx.err(
                    v.span().start,
                    &format!("{path}.reuse_connection"),
                    "reuse_connection applies to http checks only (https checks open a connection per check)",
                );
            }
            *v.get_ref()
        }
    };
    let mut weight_from = None;
    if let Some(h) = &raw.weight_header {
        let n = h.get_ref().to_ascii_lowercase();
        if !is_token(&n) {
            cx.err(
                h.span().start,
                &format!("{path}.weight_header"),
                "not a valid header name",
            );
        }
        weight_from = Some(WeightSource::Header(n));
    }
    if let Some(b) = &raw.weight_body {
        let key = format!("{path}.weight_body");
        if weight_from.is_some() {
            cx.err(
                b.span().start,
                &key,
                "use weight_header or weight_body, not both",
            );
        } else if *b.get_ref() {
            weight_from = Some(WeightSource::Body);
        }
    }
    if method == "HEAD" {
        if let Some(b) = &raw.body {
            cx.err(
                b.span().start,
                &format!("{path}.body"),
                "a HEAD response has no body to match",
            );
        }
        if let Some(b) = raw.weight_body.as_ref().filter(|b| *b.get_ref()) {
            cx.err(
                b.span().start,
                &format!("{path}.weight_body"),
                "a HEAD response has no body to read a weight from",
            );
        }
    }
    if (body.is_some() || weight_from == Some(WeightSource::Body))
        && max_body == 0
        && let Some(m) = &raw.max_body
    {
        cx.err(
            m.span().start,
            &format!("{path}.max_body"),
            "max_body = 0 reads no body, but the check needs one",
        );
    }
    let ok = cx.ok;
    cx.ok = ok_before && ok;
    ok.then_some(HttpCheck {
        tls,
        port,
        method,
        path: path_v,
        host,
        sni,
        expect,
        body,
        headers,
        max_body,
        verify_tls,
        weight_from,
        reuse_connection,
    })
}

fn host_value(cx: &mut Ctx, v: &Option<Spanned<String>>, key: &str) -> Option<String> {
    let v = v.as_ref()?;
    let s = v.get_ref();
    // A Host header may carry a port ("example.com:8080") or be an address literal.
    let bare = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => h,
        _ => s.as_str(),
    };
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    if !(is_host_name(bare) || bare.parse::<IpAddr>().is_ok()) {
        cx.err(v.span().start, key, format!("not a host name: {s:?}"));
    }
    Some(s.to_ascii_lowercase())
}

fn status_range(raw: &RawStatus) -> Result<StatusRange, String> {
    let code = |n: i64| -> Result<u16, String> {
        if (100..=599).contains(&n) {
            Ok(n as u16)
        } else {
            Err(format!("HTTP status must be 100..=599, not {n}"))
        }
    };
    match raw {
        RawStatus::Code(n) => code(*n).map(|c| StatusRange { lo: c, hi: c }),
        RawStatus::Range(s) => {
            let parse = |t: &str| -> Result<u16, String> {
                t.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("bad status range {s:?}; write e.g. \"200-299\""))
                    .and_then(code)
            };
            let (lo, hi) = match s.split_once('-') {
                Some((a, b)) => (parse(a)?, parse(b)?),
                None => {
                    let c = parse(s)?;
                    (c, c)
                }
            };
            if lo > hi {
                return Err(format!("status range {s:?} is backwards"));
            }
            Ok(StatusRange { lo, hi })
        }
    }
}

fn pool(
    map: &mut SourceMap,
    path: &str,
    at: usize,
    raw: &RawPool,
    named: &HashMap<String, Option<Arc<CheckSpec>>>,
) -> Option<PoolSpec> {
    let check_spec = match &raw.check {
        None => {
            map.report(
                at,
                path,
                "a pool needs a check; write check = { none = true } to serve its nodes unchecked",
            );
            None
        }
        Some(c) => match c.get_ref() {
            RawCheckRef::Named(n) => match named.get(n) {
                Some(spec) => spec.clone(),
                None => {
                    let mut known: Vec<&str> = named.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    let hint = if known.is_empty() {
                        "no [checks.*] table is defined".to_owned()
                    } else {
                        format!("defined checks: {}", known.join(", "))
                    };
                    map.report(
                        c.span().start,
                        format!("{path}.check"),
                        format!("unknown check {n:?}; {hint}"),
                    );
                    None
                }
            },
            RawCheckRef::Inline(rc) => {
                check(map, &format!("{path}.check"), c.span().start, rc).map(Arc::new)
            }
        },
    };

    let mut cx = Ctx { map, ok: true };
    let policy = match &raw.policy {
        None => DEFAULT_POLICY,
        Some(p) => match p.get_ref().as_str() {
            "round-robin" => Policy::RoundRobin,
            "weighted" => Policy::Weighted,
            "client-hash" => Policy::ClientHash,
            "fastest" => Policy::Fastest,
            other => {
                cx.err(
                    p.span().start,
                    &format!("{path}.policy"),
                    format!("unknown policy {other:?}; use round-robin, weighted, client-hash or fastest"),
                );
                DEFAULT_POLICY
            }
        },
    };
    let ttl: u32 = cx.int(
        &raw.ttl,
        &format!("{path}.ttl"),
        0,
        MAX_TTL as i64,
        DEFAULT_TTL,
    );
    let degraded_ttl: u32 = cx.int(
        &raw.degraded_ttl,
        &format!("{path}.degraded_ttl"),
        0,
        ttl as i64,
        ttl / 2,
    );
    let max_answers: u8 = cx.int(
        &raw.max_answers,
        &format!("{path}.max_answers"),
        1,
        MAX_ANSWERS as i64,
        MAX_ANSWERS as u8,
    );
    let min_healthy = match &raw.min_healthy {
        None => DEFAULT_MIN_HEALTHY,
        Some(m) => {
            let key = format!("{path}.min_healthy");
            let bad = "min_healthy must be a count >= 1, a fraction in (0, 1] or a percentage like \"50%\"";
            let permille = |f: f64| ((f * 1000.0).round() as u16).max(1);
            match m.get_ref() {
                RawMinHealthy::Count(n) if (1..=MAX_NODES as i64).contains(n) => {
                    MinHealthy::Count(*n as u32)
                }
                RawMinHealthy::Fraction(f) if *f > 0.0 && *f <= 1.0 => {
                    MinHealthy::Permille(permille(*f))
                }
                RawMinHealthy::Text(t) => match t
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                {
                    Some(p) if p > 0.0 && p <= 100.0 => MinHealthy::Permille(permille(p / 100.0)),
                    _ => {
                        cx.err(m.span().start, &key, bad);
                        DEFAULT_MIN_HEALTHY
                    }
                },
                _ => {
                    cx.err(m.span().start, &key, bad);
                    DEFAULT_MIN_HEALTHY
                }
            }
        }
    };
    let all_down = match &raw.all_down {
        None => DEFAULT_ALL_DOWN,
        Some(a) => match a.get_ref().as_str() {
            "serve-all" => AllDown::ServeAll,
            "last-healthy" => AllDown::LastHealthy,
            "empty" => AllDown::Empty,
            "servfail" => AllDown::ServFail,
            other => {
                cx.err(
                    a.span().start,
                    &format!("{path}.all_down"),
                    format!("unknown all_down mode {other:?}; use serve-all, last-healthy, empty or servfail"),
                );
                DEFAULT_ALL_DOWN
            }
        },
    };
    let slow_start = match &raw.slow_start {
        None => None,
        Some(s) => {
            let key = format!("{path}.slow_start");
            match cx.duration(s, &key) {
                Some(d) if d.is_zero() => None,
                Some(d) if d > Duration::from_secs(3600) => {
                    cx.err(s.span().start, &key, "slow_start must be at most 1h");
                    None
                }
                other => other,
            }
        }
    };

    let check_kind = check_spec.as_ref().map(|c| c.kind.clone());
    let mut nodes = Vec::new();
    match &raw.nodes {
        None => cx.err(at, path, "a pool needs nodes = [...]"),
        Some(list) => {
            if list.get_ref().is_empty() {
                cx.err(
                    list.span().start,
                    &format!("{path}.nodes"),
                    "a pool needs at least one node",
                );
            }
            if list.get_ref().len() > MAX_NODES {
                cx.err(
                    list.span().start,
                    &format!("{path}.nodes"),
                    format!(
                        "a pool has at most {MAX_NODES} nodes, not {}",
                        list.get_ref().len()
                    ),
                );
            }
            let mut seen = HashSet::new();
            for (i, n) in list.get_ref().iter().enumerate() {
                let key = format!("{path}.nodes[{i}]");
                if let Some(spec) = node(&mut cx, &key, n, check_kind.as_ref()) {
                    if !seen.insert(spec.addr) {
                        let at = match n.get_ref() {
                            RawNode::Table(t) => {
                                t.addr.as_ref().map_or(n.span().start, |a| a.span().start)
                            }
                            RawNode::Addr(_) => n.span().start,
                        };
                        cx.err(
                            at,
                            &key,
                            format!("duplicate node address {} in this pool", spec.addr),
                        );
                    }
                    nodes.push(spec);
                }
            }
        }
    }
    let ok = cx.ok;
    let check = check_spec?;
    ok.then(|| PoolSpec {
        name: Name::root(),
        key: String::new(),
        ttl,
        degraded_ttl,
        policy,
        max_answers,
        min_healthy,
        all_down,
        slow_start,
        check,
        nodes,
    })
}

fn parse_addr(cx: &mut Ctx, v: &str, at: usize, key: &str) -> Option<IpAddr> {
    match v.parse::<IpAddr>() {
        Ok(a) if a.is_unspecified() || a.is_multicast() => {
            cx.err(at, key, format!("{a} cannot be a node address"));
            None
        }
        Ok(a) => Some(a),
        Err(_) => {
            cx.err(at, key, format!("not an IPv4 or IPv6 address: {v:?}"));
            None
        }
    }
}

fn node(
    cx: &mut Ctx,
    path: &str,
    raw: &Spanned<RawNode>,
    kind: Option<&CheckKind>,
) -> Option<NodeSpec> {
    let default_port = kind.map_or(0, CheckKind::default_port);
    match raw.get_ref() {
        RawNode::Addr(s) => {
            let addr = parse_addr(cx, s, raw.span().start, path)?;
            Some(NodeSpec {
                addr,
                label: addr.to_string(),
                weight: DEFAULT_WEIGHT,
                tier: DEFAULT_TIER,
                maint: false,
                probe: ProbeTarget {
                    addr,
                    port: default_port,
                    host: None,
                },
            })
        }
        RawNode::Table(t) => {
            let ok_before = cx.ok;
            cx.ok = true;
            let addr = match &t.addr {
                None => {
                    cx.err(raw.span().start, path, "a node table needs addr = \"...\"");
                    None
                }
                Some(a) => parse_addr(cx, a.get_ref(), a.span().start, &format!("{path}.addr")),
            };
            let weight = match &t.weight {
                Some(w) if *w.get_ref() == 0 => {
                    cx.err(
                        w.span().start,
                        &format!("{path}.weight"),
                        "weight must be at least 1; to keep a node out of answers set maint = true",
                    );
                    DEFAULT_WEIGHT
                }
                w => cx.int(
                    w,
                    &format!("{path}.weight"),
                    1,
                    MAX_WEIGHT as i64,
                    DEFAULT_WEIGHT,
                ),
            };
            let tier: u8 = cx.int(&t.tier, &format!("{path}.tier"), 1, 255, DEFAULT_TIER);
            let check_addr = t.check_addr.as_ref().and_then(|a| {
                parse_addr(
                    cx,
                    a.get_ref(),
                    a.span().start,
                    &format!("{path}.check_addr"),
                )
            });
            let probes = !matches!(kind, Some(CheckKind::None));
            let port: u16 = match &t.check_port {
                Some(p) if !probes => {
                    cx.err(
                        p.span().start,
                        &format!("{path}.check_port"),
                        "the pool's check does not connect anywhere (none = true)",
                    );
                    0
                }
                p => cx.int(p, &format!("{path}.check_port"), 1, 65535, default_port),
            };
            let host = host_value(cx, &t.check_host, &format!("{path}.check_host"));
            if let Some(h) = &t.check_host
                && !matches!(kind, Some(CheckKind::Http(_)) | None)
            {
                cx.err(
                    h.span().start,
                    &format!("{path}.check_host"),
                    "check_host applies to http and https checks only",
                );
            }
            if let (Some(a), false) = (&t.check_addr, probes) {
                cx.err(
                    a.span().start,
                    &format!("{path}.check_addr"),
                    "the pool's check does not connect anywhere (none = true)",
                );
            }
            let label = match &t.label {
                Some(l) if l.get_ref().trim().is_empty() => {
                    cx.err(l.span().start, &format!("{path}.label"), "label is empty");
                    None
                }
                Some(l) => Some(l.get_ref().clone()),
                None => None,
            };
            let ok = cx.ok;
            cx.ok = ok_before && ok;
            let addr = addr?;
            let maint = t.maint.as_ref().is_some_and(|m| *m.get_ref());
            ok.then(|| NodeSpec {
                addr,
                label: label.unwrap_or_else(|| addr.to_string()),
                weight,
                tier,
                maint,
                probe: ProbeTarget {
                    addr: check_addr.unwrap_or(addr),
                    port: if probes { port } else { 0 },
                    host,
                },
            })
        }
    }
}
