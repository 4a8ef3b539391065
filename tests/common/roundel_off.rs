//! Roundel targets switched off: `roundel::server` does not exist yet.
//! See the switch in `tests/common/mod.rs`.

use std::net::SocketAddr;
use std::path::Path;

/// Placeholder with the same shape as the real `TestServer` in `roundel_on.rs`.
/// Whether Roundel targets are compiled in.
pub const ENABLED: bool = false;

pub struct TestServer {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
}

/// Roundel is not available: no Roundel targets.
pub fn start(_zones_dir: &Path) -> Option<TestServer> {
    None
}
