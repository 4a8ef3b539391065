//! Health checking: probes, their state machines, and the monitor that runs them.
//!
//! * [`hysteresis`]: the `rise`/`fall` machine; the state it decides lives in
//!   [`crate::node`], where selection reads it.
//! * [`probe`]: one HTTP(S) or TCP check, hard-bounded by its timeout.
//! * [`monitor`]: [`HealthMonitor`], one tokio task per distinct (target, check).
//! * [`supervise`]: probe tasks restarted (and counted) when they panic.
//! * [`local`]: checks that failed for a reason on this host, which change no state.

pub mod hysteresis;
pub mod local;
pub mod monitor;
pub mod probe;
pub mod supervise;
mod tls;

pub use monitor::{HealthMonitor, ProbeKey, ProbeStatus, Reconciled};
