//! The parse of a zone file on a thread of its own, so that its garbage lies apart from
//! the model built from it.
//!
//! The TOML document tree and the raw entries deserialized from it are a few hundred bytes
//! per name in hundreds of thousands of small blocks, all freed once the model is built.
//! Built on the same thread, the model's blocks land between them, and the freed pages
//! cannot go back to the system: at 200,000 names the server kept about 190 MiB resident
//! for a model of some 70 MB. glibc gives each thread its own malloc arena, so parsing on
//! another thread puts the transient blocks in another arena, which is wholly free
//! afterwards and which `malloc_trim` (see `crate::reclaim`) returns. Elsewhere this is
//! merely a thread hand-off: the result is the same.

use super::chunked;
use super::raw::RawZone;
use crate::source::unknown_keys::KeyProblem;

/// [`chunked::parse`] of `text` on a scoped thread of its own; on the calling thread if no
/// thread can be started.
pub(super) fn parse(text: &str) -> (Option<RawZone>, Vec<KeyProblem>) {
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new()
            .name("zone-parse".into())
            .spawn_scoped(s, || chunked::parse(text));
        match spawned {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => chunked::parse(text),
        }
    })
}
