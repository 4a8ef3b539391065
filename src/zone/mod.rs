//! The zone model: zone files parsed and validated into one immutable [`Snapshot`].
//!
//! Data flows one way: `file` reads TOML into validated [`Zone`]s, [`load_snapshot`] puts
//! them together (choosing automatic serials), and the answer engine only ever reads the
//! result. `master` converts to and from RFC 1035 master files.

pub mod dir;
pub mod encode;
pub mod file;
pub mod limits;
pub mod master;
pub mod model;
pub mod name;
pub mod prepared;
pub mod settle;
pub mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Zone errors live in [`crate::source`], below `pool` and `config`, which report through them too.
pub use crate::source::{ZoneError, ZoneErrors};
pub use model::{Node, Rdata, RrSet, SerialPolicy, Snapshot, Zone};

/// The current zone data, replaced atomically by reloads and read lock-free by every query.
/// Kept here, below both `reload` (which writes it) and `dns` (which reads it).
pub type SnapshotCell = arc_swap::ArcSwap<Snapshot>;

/// Loads every zone file of `dir` into a new snapshot.
///
/// Nothing is returned unless everything is valid: a reload either takes all of the new
/// data or none of it. `previous` is the snapshot being replaced, if any: automatic serials
/// never go backwards from it, and move forwards exactly when a zone's content changed.
pub fn load_snapshot(dir: &Path, previous: Option<&Snapshot>) -> Result<Snapshot, ZoneErrors> {
    load_snapshot_with(dir, previous, crate::pool::limits::MAX_PROBES)
}

/// [`load_snapshot`] with a cap on the health probes the zones may need other than the
/// default [`MAX_PROBES`](crate::pool::limits::MAX_PROBES).
pub fn load_snapshot_with(
    dir: &Path,
    previous: Option<&Snapshot>,
    max_probes: usize,
) -> Result<Snapshot, ZoneErrors> {
    let files = dir::zone_files(dir).map_err(ZoneErrors)?;
    snapshot_from_files_with(&files, previous, max_probes)
}

/// Like [`load_snapshot`], for an explicit list of files.
pub fn snapshot_from_files(
    files: &[PathBuf],
    previous: Option<&Snapshot>,
) -> Result<Snapshot, ZoneErrors> {
    snapshot_from_files_with(files, previous, crate::pool::limits::MAX_PROBES)
}

/// Like [`load_snapshot_with`], for an explicit list of files.
pub fn snapshot_from_files_with(
    files: &[PathBuf],
    previous: Option<&Snapshot>,
    max_probes: usize,
) -> Result<Snapshot, ZoneErrors> {
    let zones = file::load_files(files).map_err(ZoneErrors)?;
    limits::check_probes(&zones, max_probes).map_err(|e| ZoneErrors(vec![e]))?;
    let mut snapshot = Snapshot {
        generation: previous.map_or(1, |p| p.generation + 1),
        next_index: previous.map_or(0, |p| p.next_index),
        ..Snapshot::default()
    };
    for mut zone in zones {
        zone.index = match previous.and_then(|p| p.zones.get(&zone.origin_key)) {
            Some(old) => old.index,
            None => {
                snapshot.next_index += 1;
                snapshot.next_index - 1
            }
        };
        if zone.serial_policy == SerialPolicy::Auto
            && let Some(old) = previous.and_then(|p| p.zones.get(&zone.origin_key))
        {
            let serial = if old.content_digest == zone.content_digest {
                old.serial()
            } else if serial_gt(zone.serial(), old.serial()) {
                zone.serial()
            } else {
                old.serial().wrapping_add(1)
            };
            zone.set_serial(serial);
        }
        snapshot
            .zones
            .insert(zone.origin_key.clone(), Arc::new(zone));
    }
    Ok(snapshot)
}

/// Serial number comparison (RFC 1982): whether `a` is after `b`.
fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone_with_pools(origin: &str, pools: &[(&str, &str)]) -> Zone {
        let mut text = format!(
            "origin = \"{origin}\"\n[soa]\nmname = \"ns.{origin}\"\nrname = \"h.{origin}\"\n\
             [names.\"@\"]\nNS = [\"ns\"]\n[names.ns]\nA = \"192.0.2.1\"\n[checks.n]\nnone = true\n"
        );
        for (name, node) in pools {
            text += &format!("[pools.{name}]\ncheck = \"n\"\nnodes = [\"{node}\"]\n");
        }
        file::parse_zone(Path::new("t.toml"), &text, None).expect("valid zone")
    }

    /// Runtimes are attached by key, whatever order they come in: a list built in another
    /// order than [`Snapshot::pools`] still gives every pool its own nodes.
    #[test]
    fn pool_runtimes_attach_by_key_not_position() {
        use crate::node::{NodeAdmin, NodeHealth, PoolRuntime};
        let mut snapshot = Snapshot::default();
        for zone in [
            zone_with_pools("b.test.", &[("www", "192.0.2.21"), ("api", "192.0.2.22")]),
            zone_with_pools("a.test.", &[("www", "192.0.2.11")]),
        ] {
            snapshot
                .zones
                .insert(zone.origin_key.clone(), Arc::new(zone));
        }
        let epoch = std::time::Instant::now();
        let mut runtimes: Vec<_> = snapshot
            .pools()
            .into_iter()
            .map(|(key, spec)| {
                let n = spec.nodes.len();
                let health = (0..n).map(|_| Arc::new(NodeHealth::new(epoch))).collect();
                let admin = (0..n).map(|_| Arc::new(NodeAdmin::default())).collect();
                (key, Arc::new(PoolRuntime::new(spec, health, admin)))
            })
            .collect();
        assert_eq!(runtimes.len(), 3);
        runtimes.reverse();
        snapshot.attach_pools(runtimes);
        for zone in snapshot.zones.values() {
            for pool in &zone.pools {
                let runtime = pool.runtime.as_ref().expect("attached");
                assert_eq!(runtime.spec(), &pool.spec, "pool {}", pool.spec.name);
            }
        }
    }

    /// The closest enclosing zone, whether the snapshot is searched by comparing origins
    /// (one zone, a few) or by looking up suffixes (more).
    #[test]
    fn find_zone_picks_the_closest_enclosing_zone() {
        let key = |s: &str| crate::zone::name::key_of(&s.parse().unwrap());
        for extra in [0, 5] {
            let mut snapshot = Snapshot::default();
            let origins = ["test.", "a.test.", "b.a.test."];
            let others: Vec<String> = (0..extra).map(|i| format!("z{i}.example.")).collect();
            for origin in origins
                .iter()
                .copied()
                .chain(others.iter().map(|s| s.as_str()))
            {
                let zone = zone_with_pools(origin, &[]);
                snapshot
                    .zones
                    .insert(zone.origin_key.clone(), Arc::new(zone));
            }
            let found = |q: &str| snapshot.find_zone(&key(q)).map(|z| z.origin.to_string());
            assert_eq!(found("x.b.a.test.").as_deref(), Some("b.a.test."));
            assert_eq!(found("b.a.test.").as_deref(), Some("b.a.test."));
            assert_eq!(found("c.a.test.").as_deref(), Some("a.test."));
            assert_eq!(found("xa.test.").as_deref(), Some("test."));
            assert_eq!(found("test.").as_deref(), Some("test."));
            assert_eq!(found("other."), None);
            assert_eq!(found("atest."), None);
        }
        // One zone (its own path).
        let mut snapshot = Snapshot::default();
        let zone = zone_with_pools("a.test.", &[]);
        snapshot
            .zones
            .insert(zone.origin_key.clone(), Arc::new(zone));
        let found = |q: &str| snapshot.find_zone(&key(q)).map(|z| z.origin.to_string());
        assert_eq!(found("x.a.test.").as_deref(), Some("a.test."));
        assert_eq!(found("a.test.").as_deref(), Some("a.test."));
        assert_eq!(found("test."), None);
        assert_eq!(found("xa.test."), None);
        assert_eq!(found("other."), None);
    }

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(serial_gt(2, 1));
        assert!(!serial_gt(1, 2));
        assert!(serial_gt(0, u32::MAX));
        assert!(!serial_gt(5, 5));
    }
}
