//! The one key of a pool node across reloads: the monitor's admin slots, the operator's
//! overrides and the state file all name a node by its pool and address.

use std::net::IpAddr;

use hickory_proto::rr::Name;

/// A pool node: its pool's canonical name ([`pool_key`]) and its address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeKey {
    /// The pool's absolute name, lowercase, with the final dot.
    pub pool: String,
    /// The node's address.
    pub addr: IpAddr,
}

impl NodeKey {
    /// The key of the node at `addr` of the pool named `pool`.
    pub fn new(pool: &Name, addr: IpAddr) -> Self {
        Self::of(&pool.to_ascii(), addr)
    }

    /// The key of the node at `addr` of the pool named `pool` as text (any case, the
    /// final dot optional).
    pub fn of(pool: &str, addr: IpAddr) -> Self {
        Self {
            pool: pool_key(pool),
            addr,
        }
    }
}

/// Canonical form of a pool name for keys: lowercase, absolute.
pub fn pool_key(name: &str) -> String {
    let mut s = name.trim().to_ascii_lowercase();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_canonically() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let name = Name::from_ascii("Web.Example.Test.").unwrap();
        assert_eq!(NodeKey::new(&name, a), NodeKey::of("web.example.test", a));
    }
}
