//! The one log line of a node's health change, whoever decided it (this instance's
//! probe, or the cluster's rule over every instance's observations): WARN when the node
//! goes down, since that is what an operator must notice, INFO otherwise.

use super::ProbeKey;
use crate::node::Health;

/// Logs `key`'s change `from` → `to`; `pools` are the pools using the node, `reason`
/// what decided it.
pub fn health_changed(key: &ProbeKey, pools: &str, from: Health, to: Health, reason: &str) {
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                target: "roundel::health",
                node = %key.target.addr,
                port = key.target.port,
                check = key.check.kind.name(),
                pools = %pools,
                from = %from,
                to = %to,
                reason = %reason,
                "node health changed"
            )
        };
    }
    if to == Health::Down {
        line!(warn);
    } else {
        line!(info);
    }
}
