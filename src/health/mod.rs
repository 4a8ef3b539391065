//! Health checking: probes, their state machines, and the monitor that runs them.
//!
//! * [`hysteresis`]: the `rise`/`fall` machine; the state it decides lives in
//!   [`crate::node`], where selection reads it.
//! * [`probe`]: one HTTP(S) or TCP check, hard-bounded by its timeout.
//! * [`http_check`]: the plain-HTTP check, a pre-built request on a fresh connection (or a
//!   kept one, with `reuse_connection`).
//! * [`keep`]: the bound on check connections kept between checks.
//! * [`hook`]: [`ProbeHook`], through which cluster mode shares out the probes.
//! * [`monitor`]: [`HealthMonitor`], one tokio task per distinct (target, check).
//! * [`supervise`]: probe tasks restarted (and counted) when they panic.
//! * [`local`]: checks that failed for a reason on this host, which change no state.
//! * [`change_log`]: the log line of a node's health change (WARN when it goes down).

pub mod change_log;
pub mod hook;
pub mod http_check;
pub mod hysteresis;
pub mod keep;
pub mod local;
pub mod monitor;
pub mod probe;
pub mod supervise;
mod tls;

pub use hook::{LocalObservation, ProbeHook};
pub use monitor::{HealthMonitor, ProbeKey, ProbeStatus, Reconciled};
