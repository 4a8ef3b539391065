//! Pools: balanced names whose A/AAAA answers are the healthy nodes among a configured set.
//!
//! A zone file declares health checks (`[checks.NAME]`) and pools (`[pools.NAME]`):
//!
//! ```toml
//! [checks.web]
//! http = { port = 8080, path = "/health", expect = [200] }
//! interval = "1s"
//! timeout = "500ms"
//! fall = 2
//! rise = 2
//!
//! [pools.web]                     # answers web.<origin> A and AAAA
//! check = "web"                   # a named check, or an inline table with the same keys
//! policy = "round-robin"
//! nodes = ["192.0.2.10", { addr = "192.0.2.12", weight = 3 }, "2001:db8::10"]
//! ```
//!
//! [`raw`] holds the serde types the zone loader embeds, [`validate()`] turns them into
//! [`spec`] types. The defaults and the arithmetic behind them are in [`spec`].

pub mod duration;
pub mod limits;
pub mod raw;
pub mod spec;
mod validate;

pub use raw::{RawCheck, RawPool};
pub use spec::{
    AllDown, CheckKind, CheckSpec, HttpCheck, MinHealthy, NodeSpec, Policy, PoolSpec, ProbeTarget,
    StatusRange, WeightSource,
};
pub use validate::validate;

#[cfg(test)]
mod tests;
