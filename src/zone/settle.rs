//! When a zones directory has stopped changing.
//!
//! A file written in place in several steps (`cat a b > zone.toml`, a deploy tool's
//! `write` calls) can be read between two steps; if the first part happens to be valid
//! TOML, a reload would serve a zone with its tail missing. The watcher therefore reads
//! the files only once their sizes and modification times have stayed the same for a
//! settle window ([`fingerprint`] before and after). Writing to a temporary name and
//! renaming it over the zone file (atomic on POSIX) avoids the question altogether and is
//! what the documentation recommends.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How long the zone files must stay unchanged before a watcher-triggered reload reads
/// them. Longer than the pauses of a writer that writes in steps; short enough that an
/// edit is served within a second.
pub const SETTLE_WINDOW: Duration = Duration::from_millis(500);
/// Longest the watcher waits for the files to settle. If they are still changing, the
/// reload is skipped (and logged): the writer's next change triggers another attempt.
pub const SETTLE_MAX: Duration = Duration::from_secs(10);

/// Size and modification time of every zone file candidate (`*.toml`, not hidden) of a
/// directory, through symbolic links; `None` for an entry that cannot be examined.
pub type Fingerprint = Vec<(PathBuf, Option<(u64, SystemTime)>)>;

/// The current [`Fingerprint`] of `dir` (empty if the directory cannot be read: the load
/// reports that).
pub fn fingerprint(dir: &std::path::Path) -> Fingerprint {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Fingerprint = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| super::dir::is_candidate(p))
        .map(|p| {
            let m = std::fs::metadata(&p)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)));
            (p, m)
        })
        .collect();
    v.sort();
    v
}
