//! `GET /api/v1/explain`: the answer to one question, and why each pool node is in it
//! or not.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;

use crate::admin::Admin;
use crate::answer::{self, Client, Owner, PoolQuestion, Question, Rr, Selector};
use crate::node::{Family, PoolRuntime};
use crate::policy::{self, Explanation, Outcome, Selection, Verdict};

use super::views::*;
use super::{Ctx, error, json};

/// One record of an explained answer.
#[derive(Debug, Serialize)]
pub struct RecordView {
    /// Owner.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL.
    pub ttl: u32,
    /// Data in presentation format.
    pub data: String,
}

/// The answer of an explain call.
#[derive(Debug, Serialize)]
pub struct AnswerView {
    /// Response code.
    pub rcode: String,
    /// AA flag.
    pub aa: bool,
    /// The zone that answered.
    pub zone: Option<String>,
    /// Answer section.
    pub answer: Vec<RecordView>,
    /// Authority section.
    pub authority: Vec<RecordView>,
    /// Additional section.
    pub additional: Vec<RecordView>,
    /// ECS scope prefix echoed.
    pub ecs_scope: u8,
}

/// One node's part in a pool decision.
#[derive(Debug, Serialize)]
pub struct VerdictView {
    /// Label.
    pub label: String,
    /// Address.
    pub addr: IpAddr,
    /// Tier.
    pub tier: u8,
    /// State as in [`NodeView::state`].
    pub state: &'static str,
    /// `selected`, `down`, `drained`, `maint`, `other-tier`, `weight-zero`,
    /// `other-family`, `cut-by-max-answers`, `slow-start`, `not-in-last-healthy`, `all-down`.
    pub verdict: &'static str,
    /// Position in the answer when selected (0 first).
    pub rank: Option<u8>,
    /// The reason in words.
    pub reason: String,
}

/// How a pool decided.
#[derive(Debug, Serialize)]
pub struct PoolExplainView {
    /// Pool name.
    pub pool: String,
    /// Policy.
    pub policy: &'static str,
    /// `A` or `AAAA`.
    pub family: &'static str,
    /// `answer`, `empty` or `servfail`.
    pub outcome: &'static str,
    /// The tier that answered (0: none).
    pub tier: u8,
    /// TTL of the answer.
    pub ttl: u32,
    /// Some node of the family is down (degraded TTL).
    pub degraded: bool,
    /// No node was usable: the `all_down` mode decided.
    pub all_down: bool,
    /// The pool's `all_down` mode.
    pub all_down_mode: &'static str,
    /// ECS scope the answer depends on.
    pub scope_prefix: u8,
    /// Every node, in file order.
    pub nodes: Vec<VerdictView>,
}

/// `GET /api/v1/explain`.
#[derive(Debug, Serialize)]
pub struct ExplainView {
    /// Question name (absolute).
    pub name: String,
    /// Question type.
    #[serde(rename = "type")]
    pub qtype: String,
    /// Client address assumed.
    pub client: IpAddr,
    /// ECS subnet assumed.
    pub ecs: Option<String>,
    /// The response Roundel gives.
    pub response: AnswerView,
    /// How each pool on the way decided.
    pub pools: Vec<PoolExplainView>,
}

pub(super) fn record_views(section: &[Rr<'_>], qname: &Name) -> Vec<RecordView> {
    section
        .iter()
        .map(|rr| RecordView {
            name: match rr.owner {
                Owner::Query => qname.to_ascii(),
                Owner::Name(wire) => crate::zone::name::name_of(wire).to_ascii(),
            },
            rtype: rr.rtype.to_string(),
            ttl: rr.ttl,
            data: rr.rdata.data(rr.rtype).to_string(),
        })
        .collect()
}

pub(super) fn verdict_text(v: Verdict) -> (&'static str, Option<u8>, String) {
    match v {
        Verdict::Selected { rank } => (
            "selected",
            Some(rank),
            format!("in the answer at position {}", rank + 1),
        ),
        Verdict::Down => (
            "down",
            None,
            "health check failing (or no result yet)".into(),
        ),
        Verdict::Drained => ("drained", None, "drained by an operator".into()),
        Verdict::Maint => (
            "maint",
            None,
            "in maintenance (zone file or operator)".into(),
        ),
        Verdict::OtherTier { tier } => (
            "other-tier",
            None,
            format!("usable, but its tier {tier} is not the one answering"),
        ),
        Verdict::WeightZero => ("weight-zero", None, "effective weight is 0".into()),
        Verdict::OtherFamily => (
            "other-family",
            None,
            "address family does not match the query type".into(),
        ),
        Verdict::CutByMaxAnswers => (
            "cut-by-max-answers",
            None,
            "usable, but max_answers was reached".into(),
        ),
        Verdict::SlowStart => (
            "slow-start",
            None,
            "ramping up after coming back; skipped for this answer".into(),
        ),
        Verdict::NotInLastHealthy => (
            "not-in-last-healthy",
            None,
            "every node is down and it was not in the last healthy set".into(),
        ),
        Verdict::AllDown => (
            "all-down",
            None,
            "every node is down and all_down answers without addresses".into(),
        ),
    }
}

/// The selector of explain: the answer it reports is the one the next query would get
/// (each pool's next counter, read without drawing it; one clock reading), it changes
/// nothing (no counter, served time or last-healthy), and it keeps the reasons of the
/// very decisions that made the answer.
struct Explaining<'a> {
    now: Instant,
    pools: Vec<(&'a PoolRuntime, Family, Explanation)>,
}

impl<'a> Selector<'a> for Explaining<'a> {
    fn select(&mut self, pool: &'a PoolRuntime, q: PoolQuestion, out: &mut Selection) {
        let ex = policy::explain(pool, &q.input(pool.peek_counter(), self.now));
        *out = ex.selection;
        self.pools.push((pool, q.family, ex));
    }
}

pub(super) fn explain_pool(
    admin: &Admin,
    pool: &PoolRuntime,
    family: Family,
    ex: &Explanation,
) -> PoolExplainView {
    let sel = ex.selection;
    let spec = pool.spec();
    PoolExplainView {
        pool: spec.name.to_ascii(),
        policy: spec.policy.as_str(),
        family: family.record_type().into(),
        outcome: match sel.outcome {
            Outcome::Answer => "answer",
            Outcome::Empty => "empty",
            Outcome::ServFail => "servfail",
        },
        tier: sel.tier,
        ttl: sel.ttl,
        degraded: sel.degraded,
        all_down: sel.all_down,
        all_down_mode: spec.all_down.as_str(),
        scope_prefix: sel.scope_prefix,
        nodes: pool
            .nodes()
            .iter()
            .zip(&ex.verdicts)
            .map(|(n, &v)| {
                let (verdict, rank, reason) = verdict_text(v);
                VerdictView {
                    label: n.spec.label.clone(),
                    addr: n.spec.addr,
                    tier: n.spec.tier,
                    state: node_view(admin, pool, n).state,
                    verdict,
                    rank,
                    reason,
                }
            })
            .collect(),
    }
}

/// Parses `198.51.100.0/24` (or a bare address: a full-length prefix).
pub(super) fn parse_subnet(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/').unwrap_or((s, ""));
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = if p.is_empty() { max } else { p.parse().ok()? };
    (prefix <= max).then_some((addr, prefix))
}

/// Explains the answer to (`name`, `qtype`) for `client`.
pub fn explain_query(
    admin: &Admin,
    name: &str,
    qtype: &str,
    client: IpAddr,
    ecs: Option<&str>,
) -> Result<ExplainView, String> {
    let text = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    let qname = Name::from_ascii(&text).map_err(|e| format!("bad name {name:?}: {e}"))?;
    let qtype_parsed: RecordType = qtype
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("unknown type {qtype:?}"))?;
    let subnet = match ecs {
        Some(s) => Some(
            parse_subnet(s)
                .ok_or_else(|| format!("bad ECS subnet {s:?} (like 198.51.100.0/24)"))?,
        ),
        None => None,
    };
    let client_v = Client {
        addr: client,
        subnet,
    };
    let key = crate::zone::name::key_of(&qname);
    let snapshot = admin.reloader.cell().load_full();
    let mut selector = Explaining {
        now: Instant::now(),
        pools: Vec::new(),
    };
    let resp = answer::answer_with(
        &snapshot,
        &Question {
            qname: &key,
            qtype: qtype_parsed,
            client: client_v,
        },
        &mut selector,
    );
    let view = AnswerView {
        rcode: crate::dns::wire::rcode_name(resp.rcode).to_owned(),
        aa: resp.authoritative,
        zone: resp.zone.map(|z| z.origin.to_ascii()),
        answer: record_views(&resp.answer, &qname),
        authority: record_views(&resp.authority, &qname),
        additional: record_views(&resp.additional, &qname),
        ecs_scope: resp.ecs_scope,
    };
    let pools = selector
        .pools
        .iter()
        .map(|(pool, family, ex)| explain_pool(admin, pool, *family, ex))
        .collect();
    Ok(ExplainView {
        name: qname.to_ascii(),
        qtype: qtype_parsed.to_string(),
        client,
        ecs: subnet.map(|(a, p)| format!("{a}/{p}")),
        response: view,
        pools,
    })
}

pub(super) async fn explain(
    State(admin): Ctx,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    for k in q.keys() {
        if !matches!(k.as_str(), "name" | "type" | "client" | "ecs") {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("unknown parameter {k:?}: name, type, client, ecs"),
            );
        }
    }
    let Some(name) = q.get("name") else {
        return error(StatusCode::BAD_REQUEST, "missing parameter: name");
    };
    let client = match q.get("client").map(|c| c.parse::<IpAddr>()) {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(Ok(a)) => a,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "client: not an IP address"),
    };
    let qtype = q.get("type").map_or("A", String::as_str);
    match explain_query(
        &admin,
        name,
        qtype,
        client,
        q.get("ecs").map(String::as_str),
    ) {
        Ok(v) => json(&v),
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}
