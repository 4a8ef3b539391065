//! Validated, immutable pool and check types, and every default with its reason.
//!
//! # Failover arithmetic behind the defaults
//!
//! A node that dies right after a successful check is seen failing by the next check,
//! `interval` later; it is marked down after `fall` consecutive failures, the last of which
//! may take up to `timeout` (a black-holed node does not refuse, it stays silent). So:
//!
//! * detection (answers from Roundel stop naming it) ≤ `interval × fall + timeout`
//!   = 500 ms × 2 + 300 ms = **1.3 s** with the defaults;
//! * worst-case stale window seen by clients = detection + TTL held in resolver caches
//!   = 1.3 s + 20 s = **21.3 s** with the default TTL.
//!
//! For comparison (see the peers notes): HAProxy's defaults (2 s × 3) detect in about 6 s,
//! Route 53 in about 90 s, gdnsd in about 97 s. A check every 500 ms is cheap for a backend
//! (two requests a second per Roundel instance) and `fall = 2` avoids marking a node down
//! on one lost packet.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;

/// Default time between two checks of one node.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);
/// Default hard limit on one check. Well under the interval so that a slow node is
/// classified before the next check is due.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(300);
/// Default consecutive failures before a node goes down (one lost packet is not enough).
pub const DEFAULT_FALL: u32 = 2;
/// Default consecutive successes before a down node comes back (HAProxy's default).
pub const DEFAULT_RISE: u32 = 2;
/// Shortest accepted interval: faster probing hurts backends more than it helps failover.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Longest accepted interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Largest accepted `rise` / `fall`.
pub const MAX_RISE_FALL: u32 = 100;

/// Default answer TTL, seconds. Short, because a resolver holds a dead node for as long
/// as the TTL; 20 s keeps the stale window near 20 s (see the module docs).
pub const DEFAULT_TTL: u32 = 20;
/// Largest accepted pool TTL, seconds. Longer caching defeats health checking; 300 s still
/// allows the 60 s that Route 53 users often pick.
pub const MAX_TTL: u32 = 300;
/// Most addresses in one answer: 8 AAAA records still fit a 512-byte UDP response
/// (Route 53 multivalue also returns up to 8).
pub const MAX_ANSWERS: usize = 8;
/// Most nodes in one pool. Lets the selection keep per-node scratch state on the stack
/// and the last healthy set in one 64-bit mask; DNS pools are far smaller in practice.
pub const MAX_NODES: usize = 64;
/// Largest node weight.
pub const MAX_WEIGHT: u32 = 10_000;
/// Default node weight.
pub const DEFAULT_WEIGHT: u32 = 1;
/// Default node tier (tiers are tried in increasing order).
pub const DEFAULT_TIER: u8 = 1;
/// Default healthy nodes a tier needs: one, like HAProxy `backup` servers, which take
/// over only when no primary is left.
pub const DEFAULT_MIN_HEALTHY: MinHealthy = MinHealthy::Count(1);
/// Default policy.
pub const DEFAULT_POLICY: Policy = Policy::RoundRobin;
/// Default behaviour with every node down: fail open, like Route 53, gdnsd and PowerDNS
/// (a health checker that is wrong, or cut off from the nodes, must not blackhole a name).
pub const DEFAULT_ALL_DOWN: AllDown = AllDown::ServeAll;
/// Default HTTP check port.
pub const DEFAULT_HTTP_PORT: u16 = 80;
/// Default HTTPS check port.
pub const DEFAULT_HTTPS_PORT: u16 = 443;
/// Default HTTP method.
pub const DEFAULT_METHOD: &str = "GET";
/// Default HTTP path.
pub const DEFAULT_PATH: &str = "/";
/// Default accepted statuses: 2xx and 3xx, as HAProxy and Route 53 (redirects are not
/// followed, so a 301 from a healthy server counts as up).
pub const DEFAULT_EXPECT: StatusRange = StatusRange { lo: 200, hi: 399 };
/// Default cap on body bytes read by a check (Route 53 reads 5,120).
pub const DEFAULT_MAX_BODY: usize = 4096;
/// Largest accepted `max_body`.
pub const MAX_MAX_BODY: usize = 1 << 20;
/// Default of `reuse_connection` (plain HTTP checks): a fresh connection per check, as
/// HAProxy and gdnsd check, because a kept connection hides a backend that no longer
/// accepts new ones. Envoy's active checks keep one by default; here it is opt-in.
pub const DEFAULT_REUSE_CONNECTION: bool = false;

/// How a pool orders and picks its healthy nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Every healthy node, order rotated from one answer to the next.
    RoundRobin,
    /// Weighted: each node's share of first positions (and of answer slots when
    /// `max_answers` cuts) follows its effective weight.
    Weighted,
    /// Sticky per client subnet: rendezvous hashing over the healthy nodes.
    ClientHash,
    /// Ordered by smoothed check round-trip time, fastest first.
    Fastest,
}

impl Policy {
    /// The name used in zone files.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round-robin",
            Policy::Weighted => "weighted",
            Policy::ClientHash => "client-hash",
            Policy::Fastest => "fastest",
        }
    }
}

/// What a pool answers when no node of the queried family is healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllDown {
    /// Every node not under maintenance or drain (fail open).
    ServeAll,
    /// The last set that was answered healthy (falls back to `ServeAll` if none yet).
    LastHealthy,
    /// NOERROR with no addresses.
    Empty,
    /// SERVFAIL, so resolvers try elsewhere or keep serving stale data.
    ServFail,
}

impl AllDown {
    /// The name used in zone files.
    pub fn as_str(self) -> &'static str {
        match self {
            AllDown::ServeAll => "serve-all",
            AllDown::LastHealthy => "last-healthy",
            AllDown::Empty => "empty",
            AllDown::ServFail => "servfail",
        }
    }
}

/// How many healthy nodes a tier needs before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MinHealthy {
    /// At least this many nodes.
    Count(u32),
    /// At least this many thousandths of the tier's nodes (of the queried family), rounded
    /// up, and at least one.
    Permille(u16),
}

impl MinHealthy {
    /// Healthy nodes required in a tier of `total` nodes. A count is capped at `total`: a
    /// tier with every node healthy never counts as failed (a one-node backup tier under
    /// `min_healthy = 2` still answers when it is up).
    pub fn required(self, total: usize) -> usize {
        match self {
            MinHealthy::Count(n) => (n as usize).min(total).max(1),
            MinHealthy::Permille(p) => (total * p as usize).div_ceil(1000).max(1),
        }
    }
}

/// An inclusive range of accepted HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusRange {
    /// Lowest accepted.
    pub lo: u16,
    /// Highest accepted.
    pub hi: u16,
}

impl StatusRange {
    /// Whether `code` is in the range.
    pub fn contains(self, code: u16) -> bool {
        (self.lo..=self.hi).contains(&code)
    }
}

/// Where an HTTP check reads the weight a node reports about itself (HAProxy agent-check
/// style). The value is an integer weight (`"5"`), or a percentage of the configured
/// weight (`"50%"`); 0 takes the node out of answers while it stays up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WeightSource {
    /// A response header (name stored lower-case).
    Header(String),
    /// The first number in the body.
    Body,
}

/// An HTTP or HTTPS check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpCheck {
    /// HTTPS when true.
    pub tls: bool,
    /// Port (a node's `check_port` overrides it).
    pub port: u16,
    /// Request method.
    pub method: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// `Host` header (a node's `check_host` overrides it).
    pub host: Option<String>,
    /// TLS server name; when absent the host name is used if it is a DNS name.
    pub sni: Option<String>,
    /// Accepted statuses.
    pub expect: Vec<StatusRange>,
    /// Substring the body must contain within the first `max_body` bytes.
    pub body: Option<String>,
    /// Extra request headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Most body bytes read.
    pub max_body: usize,
    /// Verify the certificate chain and name (https).
    pub verify_tls: bool,
    /// Reported weight, if any.
    pub weight_from: Option<WeightSource>,
    /// Plain HTTP only: keep the connection between checks (HTTP/1.1 keep-alive) instead
    /// of opening one per check.
    pub reuse_connection: bool,
}

/// What a check does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// HTTP or HTTPS request (boxed: it is much larger than the other kinds).
    Http(Box<HttpCheck>),
    /// TCP connect to this port (a node's `check_port` overrides it).
    Tcp {
        /// Port.
        port: u16,
    },
    /// No probing; always up.
    None,
}

impl CheckKind {
    /// Short name for logs: `http`, `https`, `tcp`, `none`.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Http(h) if h.tls => "https",
            CheckKind::Http(_) => "http",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::None => "none",
        }
    }

    /// The port probed when a node sets no `check_port` (0 for `none`).
    pub fn default_port(&self) -> u16 {
        match self {
            CheckKind::Http(h) => h.port,
            CheckKind::Tcp { port } => *port,
            CheckKind::None => 0,
        }
    }
}

/// A validated check. Equal specs are the same check, whatever they are called: the health
/// monitor runs one probe per distinct (target, spec), hence `Eq + Hash`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckSpec {
    /// What the check does.
    pub kind: CheckKind,
    /// Time between two checks.
    pub interval: Duration,
    /// Hard limit on one check (< interval).
    pub timeout: Duration,
    /// Consecutive successes to come up.
    pub rise: u32,
    /// Consecutive failures to go down.
    pub fall: u32,
}

impl CheckSpec {
    /// Worst case from a node's death to Roundel no longer answering with it.
    pub fn detection_time(&self) -> Duration {
        self.interval * self.fall + self.timeout
    }
}

/// Where one node is probed. Two nodes (in any pools) with the same target and the same
/// check share one probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeTarget {
    /// Address connected to (`check_addr`, else the served address).
    pub addr: IpAddr,
    /// Port connected to (`check_port`, else the check's port; 0 for `none`).
    pub port: u16,
    /// Per-node Host header / TLS name override (`check_host`).
    pub host: Option<String>,
}

/// A validated node of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Served address; A answers use IPv4 nodes, AAAA answers IPv6 nodes.
    pub addr: IpAddr,
    /// Name for logs and the admin API.
    pub label: String,
    /// Configured weight (1..=`MAX_WEIGHT`).
    pub weight: u32,
    /// Failover tier; lower tiers are preferred.
    pub tier: u8,
    /// Configured out of service (`maint = true`).
    pub maint: bool,
    /// Where it is checked.
    pub probe: ProbeTarget,
}

/// A validated pool: one balanced name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    /// Absolute name answered (A and AAAA).
    pub name: Name,
    /// The key as written in the zone file (`web`, `@`), for messages.
    pub key: String,
    /// Answer TTL, seconds.
    pub ttl: u32,
    /// TTL while some nodes of the queried family are down, seconds.
    pub degraded_ttl: u32,
    /// Selection policy.
    pub policy: Policy,
    /// Most addresses in one answer (1..=8).
    pub max_answers: u8,
    /// Healthy nodes a tier needs.
    pub min_healthy: MinHealthy,
    /// Answer with no healthy node.
    pub all_down: AllDown,
    /// Ramp-up period for a node that comes back up.
    pub slow_start: Option<Duration>,
    /// The health check of every node.
    pub check: Arc<CheckSpec>,
    /// The nodes, in file order (their indices are what selections return).
    pub nodes: Vec<NodeSpec>,
}
