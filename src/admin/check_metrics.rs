//! The health-check families of `/metrics`, per probe target (a target and check shared by
//! several nodes is one probe): transitions, check durations and failures by reason.
//!
//! They are what grows with the number of probes, so they are kept small: per target the
//! duration histogram carries only its count and sum, the buckets are per kind of check
//! (`roundel_check_kind_duration_seconds`), and only the failure reasons a kind of check can
//! report are exported (docs/operations.md#metrics-at-scale).

use std::sync::Arc;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use crate::node::{CHECK_BUCKETS, FAILURE_REASONS, PoolRuntime};
use crate::zone::Zone;

/// Encodes the check families for the probes of `pools`.
pub fn encode(
    enc: &mut DescriptorEncoder,
    pools: &[(&Zone, &Arc<PoolRuntime>)],
) -> Result<(), std::fmt::Error> {
    // Probes (shared by every node with the same target and check).
    let mut probes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, p) in pools {
        let kind = p.spec().check.kind.name();
        if kind == "none" {
            continue;
        }
        for n in p.nodes() {
            if !seen.insert(Arc::as_ptr(&n.health)) {
                continue;
            }
            let target = std::net::SocketAddr::new(n.spec.probe.addr, n.spec.probe.port);
            probes.push((
                target.to_string(),
                kind,
                n.health.check_totals(),
                n.health.detail().transitions,
            ));
        }
    }
    {
        // Per target only the count and the sum (and the +Inf bucket the format
        // requires): 3 series instead of 14, so that /metrics stays a few MB at the
        // probe cap (docs/operations.md#metrics-at-scale). The buckets are kept per kind
        // of check, summed over its targets, below.
        let mut m = enc.encode_descriptor(
            "roundel_check_duration_seconds",
            "Duration of health checks, failed ones included (count and sum per target)",
            None,
            MetricType::Histogram,
        )?;
        let mut by_kind: Vec<(&str, f64, [u64; CHECK_BUCKETS.len() + 1])> = Vec::new();
        for (target, kind, t, _) in &probes {
            let count = t.buckets.iter().sum();
            let labels = [("target", target.as_str()), ("check", *kind)];
            m.encode_family(&labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    t.sum,
                    count,
                    &[(f64::INFINITY, count)],
                    None,
                )?;
            let i = match by_kind.iter().position(|(k, ..)| k == kind) {
                Some(i) => i,
                None => {
                    by_kind.push((*kind, 0.0, [0; CHECK_BUCKETS.len() + 1]));
                    by_kind.len() - 1
                }
            };
            let k = &mut by_kind[i];
            k.1 += t.sum;
            for (sum, b) in k.2.iter_mut().zip(t.buckets.iter()) {
                *sum += b;
            }
        }
        let mut m = enc.encode_descriptor(
            "roundel_check_kind_duration_seconds",
            "Duration of health checks of every target, by kind of check",
            None,
            MetricType::Histogram,
        )?;
        for (kind, sum, counts) in &by_kind {
            let buckets: Vec<(f64, u64)> = CHECK_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(counts.iter().copied())
                .collect();
            m.encode_family(&[("check", *kind)])?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    *sum,
                    counts.iter().sum(),
                    &buckets,
                    None,
                )?;
        }
    }
    {
        let mut m = enc.encode_descriptor(
            "roundel_check_failures",
            "Failed health checks by reason",
            None,
            MetricType::Counter,
        )?;
        for (target, kind, t, _) in &probes {
            for (i, reason) in FAILURE_REASONS.iter().enumerate() {
                // Only the reasons this kind of check can report: fewer series that
                // can never count (a TCP check has no HTTP status, no TLS).
                if !reason_applies(kind, reason) {
                    continue;
                }
                let labels = [
                    ("target", target.as_str()),
                    ("check", *kind),
                    ("reason", *reason),
                ];
                ConstCounter::new(t.failures[i]).encode(m.encode_family(&labels)?)?;
            }
        }
    }
    {
        let mut m = enc.encode_descriptor(
            "roundel_check_transitions",
            "Health state changes of each probe target, the first result included",
            None,
            MetricType::Counter,
        )?;
        for (target, kind, _, transitions) in &probes {
            let labels = [("target", target.as_str()), ("check", *kind)];
            ConstCounter::new(*transitions).encode(m.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// Whether a check of `kind` can fail for `reason` ([`crate::health::probe`]): a TCP check
/// only connects; only an HTTPS check has TLS.
fn reason_applies(kind: &str, reason: &str) -> bool {
    match kind {
        "tcp" => matches!(reason, "timeout" | "refused" | "connect"),
        "http" => reason != "tls",
        _ => true,
    }
}
