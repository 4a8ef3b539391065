//! Live node state: what health checking writes and selection reads.
//!
//! Probes (in [`crate::health`]) write each target's [`NodeHealth`]; operators write each
//! pool node's [`NodeAdmin`] through the admin API; [`crate::policy`] reads both, through
//! a [`PoolRuntime`], to pick the nodes of an answer. Keeping these types here, below both
//! `health` and `policy`, lets data flow one way: neither of those imports the other.
//!
//! The answer path reads only atomics here: no lock, no allocation. Everything an
//! operator wants to look at but the answer path does not need (history, last failure
//! text, counters) sits behind a mutex that only probes and the admin side take.
//!
//! * [`health`]: up/down, smoothed RTT, slow-start time, details and history of a target.
//! * [`failure`]: why a check failed, and the check counters.
//! * [`reported`]: the weight a node reports about itself.
//! * [`admin`]: operator overrides and drain tracking; [`key`]: how a pool node is named
//!   across reloads.
//! * [`pool`]: a pool's spec joined with its nodes' state.
//! * [`memo`]: the state epoch, and a pool's memo of its last steady selection.
//! * [`rotation`]: a pool's rotation counter, sharded by UDP worker.

pub mod admin;
pub mod failure;
pub mod health;
pub mod key;
pub mod memo;
pub mod pool;
pub mod reported;
pub mod rotation;

pub use admin::{ANSWER_SAMPLE, AdminState, NodeAdmin, SERVED_GRANULARITY_MS};
pub use failure::{CHECK_BUCKETS, CheckTotals, FAILURE_REASONS, Failure};
pub use health::{HISTORY_LEN, Health, NodeHealth, ProbeDetail, Transition};
pub use key::{NodeKey, pool_key};
pub use memo::{Memo, state_epoch};
pub use pool::{Family, NodeRuntime, PoolRuntime};
pub use reported::Reported;
pub use rotation::{RotationCounter, set_rotation_shard};
