//! The key layout under the cluster prefix and the JSON values stored there.
//!
//! ```text
//! PREFIX/members/NAME            Member          on NAME's lease
//! PREFIX/obs/PROBE/NAME          Observation     on NAME's lease, written under a txn
//!                                                comparing the member key's lease
//! PREFIX/admin/POOL/ADDR         AdminValue      no lease: outlives every instance
//! PREFIX/served/NAME             ServedValue     no lease: answers outlive the instance
//! ```
//!
//! `PROBE` names one (target, check): the target's address and port, the check kind and
//! a hash of the whole check specification, so instances with the same zones agree on it.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::health::ProbeKey;

/// The stable name of a (target, check) in keys.
pub fn probe_id(key: &ProbeKey) -> String {
    // FxHasher has no random seed: every instance computes the same value.
    let mut h = rustc_hash::FxHasher::default();
    key.check.hash(&mut h);
    key.target.hash(&mut h);
    format!(
        "{}:{}:{}:{:016x}",
        key.target.addr,
        key.target.port,
        key.check.kind.name(),
        h.finish()
    )
}

/// What one member says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Member name.
    pub name: String,
    /// Roundel version.
    pub version: String,
    /// DNS listen addresses.
    pub listen: Vec<String>,
    /// Digest of the loaded zones (same zones, same digest).
    pub zone_digest: String,
}

/// One observer's verdict on one (target, check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// `up` or `down` (after the observer's rise/fall).
    pub state: String,
    /// `ok` or why the last check failed.
    pub reason: String,
    /// Duration of the last check, microseconds.
    pub rtt_us: u64,
    /// Smoothed RTT of passing checks, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srtt_us: Option<u64>,
    /// Weight the node reported (`"5"` or `"50%"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<String>,
    /// Observer's wall clock at the check, Unix milliseconds (informational: freshness is
    /// judged on the receiver's clock).
    pub at_ms: u64,
}

/// An admin override kept in etcd.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminValue {
    /// `ready`, `drain` or `maint`.
    pub state: String,
    /// Weight override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Unix seconds of the change.
    pub since: f64,
}

/// Until when each node's answers from one member may be cached: `"POOL|ADDR"` to Unix
/// milliseconds.
pub type ServedValue = BTreeMap<String, u64>;

/// The keys of one cluster.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

/// What a key under the prefix is.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyKind<'a> {
    /// `members/NAME`.
    Member(&'a str),
    /// `obs/PROBE/NAME`.
    Obs(&'a str, &'a str),
    /// `admin/POOL/ADDR`.
    Admin(&'a str, &'a str),
    /// `served/NAME`.
    Served(&'a str),
}

impl Keys {
    /// Keys under `prefix` (no trailing slash).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }
    /// Everything of the cluster.
    pub fn all(&self) -> String {
        format!("{}/", self.prefix)
    }
    /// A member's key.
    pub fn member(&self, name: &str) -> String {
        format!("{}/members/{name}", self.prefix)
    }
    /// An observation's key.
    pub fn obs(&self, probe: &str, member: &str) -> String {
        format!("{}/obs/{probe}/{member}", self.prefix)
    }
    /// An admin override's key.
    pub fn admin(&self, pool: &str, addr: &str) -> String {
        format!("{}/admin/{pool}/{addr}", self.prefix)
    }
    /// A member's served times.
    pub fn served(&self, member: &str) -> String {
        format!("{}/served/{member}", self.prefix)
    }
    /// Classifies a key; `None` for anything else under the prefix.
    pub fn parse<'a>(&self, key: &'a str) -> Option<KeyKind<'a>> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let (kind, rest) = rest.split_once('/')?;
        match kind {
            "members" => Some(KeyKind::Member(rest)),
            "served" => Some(KeyKind::Served(rest)),
            "obs" => {
                let (p, m) = rest.rsplit_once('/')?;
                Some(KeyKind::Obs(p, m))
            }
            "admin" => {
                let (p, a) = rest.rsplit_once('/')?;
                Some(KeyKind::Admin(p, a))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let k = Keys::new("/r");
        assert_eq!(k.parse(&k.member("a")), Some(KeyKind::Member("a")));
        assert_eq!(
            k.parse(&k.obs("10.0.0.1:80:http:00ff", "ns1")),
            Some(KeyKind::Obs("10.0.0.1:80:http:00ff", "ns1"))
        );
        assert_eq!(
            k.parse(&k.admin("www.example.", "2001:db8::1")),
            Some(KeyKind::Admin("www.example.", "2001:db8::1"))
        );
        assert_eq!(k.parse(&k.served("b")), Some(KeyKind::Served("b")));
        assert_eq!(k.parse("/rx/members/a"), None);
        assert_eq!(k.parse("/r/other/a"), None);
    }
}
