//! The DNS-over-TCP listener's connection table: a global cap, a cap per client address,
//! and the longest idle connection evicted at the cap ([`crate::limits::slots`], shared
//! with the admin listener). Addresses are counted per IPv4 address and per IPv6 /64 (one
//! host or site usually owns a whole /64).

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

pub use crate::limits::EVICTIONS_IN_FLIGHT;
use crate::limits::counters;
use crate::limits::slots::{SlotCaps, SlotTable};

/// The key a client address is counted under: the address (IPv4), its /64 (IPv6).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// A table for at most `max` connections, `per_address` from one client address (or
/// IPv6 /64), with [`EVICTIONS_IN_FLIGHT`] evictions closing at once; the sockets it
/// holds are the `roundel_tcp_connections` gauge.
pub fn table(max: usize, per_address: u32) -> Arc<SlotTable> {
    SlotTable::counting(
        SlotCaps {
            max,
            per_client: Some(per_address),
            evictions_in_flight: EVICTIONS_IN_FLIGHT,
        },
        Some(&counters::TCP_OPEN),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address_key("192.0.2.9".parse().unwrap()),
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
    }
}
