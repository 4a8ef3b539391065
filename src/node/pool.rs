//! A pool's live state: its spec joined with the health and admin slots of its nodes.
//! Built by the health monitor, held in the zone snapshot, read by selection.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hickory_proto::rr::Name;

use super::memo::Memo;
use super::rotation::RotationCounter;
use super::{AdminState, NodeAdmin, NodeHealth};
use crate::pool::spec::MAX_NODES;
use crate::pool::{NodeSpec, PoolSpec};

/// Address family of a query: A answers carry IPv4 nodes, AAAA answers IPv6 nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// A
    V4,
    /// AAAA
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The record type that carries addresses of this family.
    pub fn record_type(self) -> hickory_proto::rr::RecordType {
        match self {
            Family::V4 => hickory_proto::rr::RecordType::A,
            Family::V6 => hickory_proto::rr::RecordType::AAAA,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }
}

/// One node of a [`PoolRuntime`].
#[derive(Debug)]
pub struct NodeRuntime {
    /// The configured node.
    pub spec: NodeSpec,
    /// Health from its probe (shared with every node with the same probe).
    pub health: Arc<NodeHealth>,
    /// Admin override slots of this node in this pool.
    pub admin: Arc<NodeAdmin>,
    /// Stable per-address hash for rendezvous hashing and slow-start thinning.
    pub(crate) seed: u64,
}

impl NodeRuntime {
    /// Out of service: `maint = true` in the zone file, or an admin maint.
    #[inline]
    pub fn in_maint(&self) -> bool {
        self.spec.maint || self.admin.state() == AdminState::Maint
    }

    /// The weight before slow start: the admin override, else the weight the node
    /// reported, else the configured one.
    #[inline]
    pub fn base_weight(&self) -> u32 {
        self.admin.weight().unwrap_or_else(|| {
            self.health
                .reported()
                .map_or(self.spec.weight, |r| r.apply(self.spec.weight))
        })
    }

    /// The node's state as operators see it: `maint`, `drain`, else its health.
    pub fn state_name(&self) -> &'static str {
        if self.in_maint() {
            "maint"
        } else if self.admin.state() == AdminState::Drain {
            "drain"
        } else {
            self.health.health().as_str()
        }
    }
}

/// A pool ready to answer from: its spec plus the live state of its nodes. Built by
/// [`crate::health::HealthMonitor::reconcile`]; held by the DNS side in its zone snapshot.
#[derive(Debug)]
pub struct PoolRuntime {
    spec: PoolSpec,
    pub(crate) nodes: Box<[NodeRuntime]>,
    /// Distinct tiers, ascending.
    pub(crate) tiers: Box<[u8]>,
    /// Per tier (index into `tiers`), the bit set of its nodes: fixed for the pool's
    /// life, so the answer path counts a tier's nodes with a popcount, not a table.
    pub(crate) tier_masks: Box<[u64]>,
    /// Per family, the bit set of its nodes (also fixed).
    pub(crate) family_masks: [u64; 2],
    /// Per family, the bit set of nodes last answered while healthy (`last-healthy`).
    pub(crate) last_healthy: [AtomicU64; 2],
    pub(crate) counter: RotationCounter,
    /// Per family, the last steady selection (see [`Memo`]), for the answer path.
    pub(crate) memos: [Memo; 2],
}

impl PoolRuntime {
    /// Joins a spec with its nodes' state handles (one per node, in order).
    ///
    /// # Panics
    /// If the handle counts differ from the node count or the pool has more than
    /// `MAX_NODES` nodes (validation rejects that).
    pub fn new(spec: PoolSpec, health: Vec<Arc<NodeHealth>>, admin: Vec<Arc<NodeAdmin>>) -> Self {
        assert!(spec.nodes.len() <= MAX_NODES, "too many nodes");
        assert_eq!(spec.nodes.len(), health.len());
        assert_eq!(spec.nodes.len(), admin.len());
        let mut tiers: Vec<u8> = spec.nodes.iter().map(|n| n.tier).collect();
        tiers.sort_unstable();
        tiers.dedup();
        let mut tier_masks = vec![0u64; tiers.len()];
        let mut family_masks = [0u64; 2];
        for (i, n) in spec.nodes.iter().enumerate() {
            tier_masks[tiers.binary_search(&n.tier).unwrap_or(0)] |= 1 << i;
            family_masks[Family::of(n.addr).index()] |= 1 << i;
        }
        let nodes = spec
            .nodes
            .iter()
            .zip(health)
            .zip(admin)
            .map(|((n, health), admin)| NodeRuntime {
                seed: addr_seed(n.addr),
                spec: n.clone(),
                health,
                admin,
            })
            .collect();
        Self {
            spec,
            nodes,
            tiers: tiers.into(),
            tier_masks: tier_masks.into(),
            family_masks,
            last_healthy: [AtomicU64::new(0), AtomicU64::new(0)],
            counter: RotationCounter::default(),
            memos: Default::default(),
        }
    }

    /// The pool's configuration.
    pub fn spec(&self) -> &PoolSpec {
        &self.spec
    }

    /// The absolute name the pool answers.
    pub fn name(&self) -> &Name {
        &self.spec.name
    }

    /// The nodes, in configuration order (selection indices point here).
    pub fn nodes(&self) -> &[NodeRuntime] {
        &self.nodes
    }

    /// The counter value the next [`PoolRuntime::next_counter`] will return, without
    /// drawing it (explain shows the answer the next query would get).
    pub fn peek_counter(&self) -> u64 {
        self.counter.peek()
    }

    /// The nodes last answered while healthy for `family` (a bit per node index; 0 when
    /// none yet), for `all_down = "last-healthy"`.
    pub fn last_healthy(&self, family: Family) -> u64 {
        self.last_healthy[family.index()].load(Relaxed)
    }

    /// A fresh per-pool counter value for the selector's `SelectInput::counter` (one
    /// relaxed atomic add on the calling thread's shard, see [`RotationCounter`]). A
    /// per-pool counter keeps each pool's rotation even however queries for different
    /// pools interleave.
    #[inline]
    pub fn next_counter(&self) -> u64 {
        self.counter.next()
    }
}

/// A stable hash of a node address: the same node keeps its clients across reloads.
pub(crate) fn addr_seed(a: IpAddr) -> u64 {
    match a {
        IpAddr::V4(v) => mix(u32::from(v) as u64 ^ (4 << 40)),
        IpAddr::V6(v) => {
            let b = u128::from(v);
            mix((b >> 64) as u64 ^ mix(b as u64 ^ (6 << 40)))
        }
    }
}

/// SplitMix64 finalizer: a fast, well-mixing 64-bit hash step.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
