//! The parse of a zone file on a thread of its own, handing its parts to the builder as
//! they are ready, so that the parse's garbage lies apart from the model built from it.
//!
//! The TOML document tree and the raw entries deserialized from it are a few hundred bytes
//! per name in many small blocks, all freed once the model has them. Allocated on the
//! builder's thread, the model's blocks land between them, and the freed pages cannot go
//! back to the system: at 200,000 names the server kept about 190 MiB resident for a model
//! of some 70 MB. glibc gives each thread its own malloc arena, so parsing on another
//! thread puts the transient blocks in another arena, which is wholly free afterwards and
//! which `malloc_trim` (see `crate::reclaim`) returns.
//!
//! The raw entries of a slice also go back to the parse thread to be freed
//! ([`Batch`]'s drop): freed on the builder's thread, each block would go to that thread's
//! allocator cache and straight into the model's next allocation of its size, and the
//! model would pin the parse arena's pages again.
//!
//! The channel ahead holds one slice, so the parse runs at most two slices ahead of the
//! builder and the raw entries alive at once stay bounded. Where no thread can be
//! started, the parts are produced first, then built, on the calling thread.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender};

use super::chunked::{self, Entry, Msg};
use super::raw::RawZone;
use super::split::CHUNK_BYTES;
use crate::source::unknown_keys::KeyProblem;

/// Slices parsed ahead of the builder, waiting in the channel.
const AHEAD: usize = 1;

/// The parts of one zone file, as the builder takes them: [`Stream::head`] first, then
/// the names slices as an iterator of [`Batch`]es.
pub(super) struct Stream {
    source: Source,
    back: Option<Sender<Vec<Entry>>>,
    problems: Vec<KeyProblem>,
    failed: bool,
}

enum Source {
    Thread(Receiver<Msg>),
    Here(VecDeque<Msg>),
}

impl Stream {
    fn new(source: Source, back: Option<Sender<Vec<Entry>>>) -> Self {
        Self {
            source,
            back,
            problems: Vec::new(),
            failed: false,
        }
    }

    fn next_msg(&mut self) -> Option<Msg> {
        match &mut self.source {
            Source::Thread(rx) => rx.recv().ok(),
            Source::Here(q) => q.pop_front(),
        }
    }

    /// Everything but the names slices (`None` when that did not parse), and how many
    /// names the slices define.
    pub(super) fn head(&mut self) -> (Option<RawZone>, usize) {
        match self.next_msg() {
            Some(Msg::Head {
                raw,
                problems,
                names,
            }) => {
                self.problems.extend(problems);
                (Some(*raw), names)
            }
            Some(Msg::Failed { problems }) => {
                self.problems.extend(problems);
                self.failed = true;
                (None, 0)
            }
            // The parse thread ended without a word: it panicked, which `parse` passes on.
            Some(Msg::Names { .. }) | None => {
                self.failed = true;
                (None, 0)
            }
        }
    }

    /// Whether the file did not parse: then only [`Stream::problems`] are to be reported,
    /// not what the builder made of a part of the file.
    pub(super) fn failed(&self) -> bool {
        self.failed
    }

    /// The parse problems found so far (unknown keys, syntax), in no particular order.
    pub(super) fn problems(&self) -> &[KeyProblem] {
        &self.problems
    }
}

impl Iterator for Stream {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.failed {
            return None;
        }
        match self.next_msg()? {
            Msg::Names { entries, problems } => {
                self.problems.extend(problems);
                Some(Batch {
                    entries,
                    back: self.back.clone(),
                })
            }
            Msg::Failed { problems } => {
                self.problems.extend(problems);
                self.failed = true;
                None
            }
            Msg::Head { .. } => None,
        }
    }
}

/// The entries of one names slice, sorted by name as toml gives them. Dropped, they go back
/// to the parse thread to be freed there (see the module documentation).
pub(super) struct Batch {
    entries: Vec<Entry>,
    back: Option<Sender<Vec<Entry>>>,
}

impl Batch {
    /// The entries.
    pub(super) fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        if let Some(back) = &self.back {
            // Gone only when the parse thread has ended; then they are freed here.
            let _ = back.send(entries);
        }
    }
}

/// Parses `text` on a scoped thread of its own, while `build` takes the parts on the
/// calling thread.
pub(super) fn parse<R>(text: &str, build: impl FnOnce(&mut Stream) -> R) -> R {
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Msg>(AHEAD);
        // Unbounded: a batch given back must never wait for the parse thread, which may
        // itself be waiting to hand on the next slice.
        let (back_tx, back_rx) = mpsc::channel::<Vec<Entry>>();
        let spawned = std::thread::Builder::new()
            .name("zone-parse".into())
            .spawn_scoped(s, move || {
                let free = |rx: &Receiver<Vec<Entry>>| while rx.try_recv().is_ok() {};
                chunked::produce(text, CHUNK_BYTES, &mut |m| tx.send(m).is_ok(), &mut || {
                    free(&back_rx)
                });
                drop(tx);
                // Free what comes back until the builder is done with every batch.
                while back_rx.recv().is_ok() {}
                // This thread's heap is now empty; trimmed before the thread ends, it goes
                // back to the system whole rather than to the next thread to start.
                crate::reclaim::give_back_free_memory();
            });
        match spawned {
            Ok(handle) => {
                let mut stream = Stream::new(Source::Thread(rx), Some(back_tx));
                let out = build(&mut stream);
                // Whatever the builder left unread, the parse thread stops at its next
                // send; then it frees what came back and ends.
                drop(stream);
                if let Err(panic) = handle.join() {
                    std::panic::resume_unwind(panic);
                }
                out
            }
            Err(_) => {
                let mut parts = VecDeque::new();
                chunked::produce(
                    text,
                    CHUNK_BYTES,
                    &mut |m| {
                        parts.push_back(m);
                        true
                    },
                    &mut || {},
                );
                let mut stream = Stream::new(Source::Here(parts), None);
                build(&mut stream)
            }
        }
    })
}
