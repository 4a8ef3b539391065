//! Health checking: probes, their state machines, and the monitor that runs them.
//!
//! * [`state`]: per-target runtime state read lock-free by the answer path, the
//!   `rise`/`fall` machine, admin overrides.
//! * [`probe`]: one HTTP(S) or TCP check, hard-bounded by its timeout.
//! * [`hook`]: [`ProbeHook`], through which cluster mode shares out the probes.
//! * [`monitor`]: [`HealthMonitor`], one tokio task per distinct (target, check).

pub mod hook;
pub mod monitor;
pub mod probe;
pub mod state;
mod tls;

pub use hook::{LocalObservation, ProbeHook};
pub use monitor::{HealthMonitor, ProbeKey, ProbeStatus, Reconciled};
pub use state::{AdminState, Failure, Health, NodeAdmin, NodeHealth, Reported, Transition};
