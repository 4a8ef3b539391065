//! Frees retired zone snapshots on a thread of their own, never on an answering thread.
//!
//! A reload swaps the new snapshot in and hands the old one to [`retire`]. Answering
//! threads may still hold it for a moment (a UDP worker's `arc_swap::Cache` until its next
//! batch or idle wake-up, a TCP query until it is answered); whoever drops the last
//! reference frees it, and freeing a large zone takes long (hundreds of milliseconds for
//! hundreds of thousands of names). So the reclaimer keeps one reference and waits until it
//! is the only one left, then drops it itself: no query ever waits for the free.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often the reclaimer looks whether the other holders have let go.
pub const POLL: Duration = Duration::from_millis(10);
/// After this long the reclaimer lets go of a snapshot that is still held elsewhere (a
/// stuck TCP client, say): the last holder frees it then, as it would without a reclaimer.
pub const MAX_HOLD: Duration = Duration::from_secs(60);

/// A retired value waiting to be the last of its kind.
trait Retired: Send {
    /// Whether the reclaimer holds the only reference.
    fn sole(&self) -> bool;
}

impl<T: Send + Sync> Retired for Arc<T> {
    fn sole(&self) -> bool {
        Arc::strong_count(self) == 1 && Arc::weak_count(self) == 0
    }
}

type Item = (Box<dyn Retired>, Instant);

fn sender() -> &'static Mutex<Sender<Item>> {
    static SENDER: OnceLock<Mutex<Sender<Item>>> = OnceLock::new();
    SENDER.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("reclaim".into())
            .spawn(move || run(rx));
        if let Err(e) = spawned {
            // Without the thread, values sent are dropped with the receiver: freed on the
            // reloading thread, which is still not an answering thread.
            tracing::warn!(error = %e, "cannot start the snapshot reclaimer thread");
        }
        Mutex::new(tx)
    })
}

/// Hands `old` to the reclaimer thread, which drops it once no one else holds it.
pub fn retire<T: Send + Sync + 'static>(old: Arc<T>) {
    let item: Item = (Box::new(old), Instant::now());
    let tx = sender().lock().unwrap_or_else(|e| e.into_inner());
    // A send fails only when the thread could not be started; the value is then dropped
    // right here, on the reloading thread.
    let _ = tx.send(item);
}

fn run(rx: Receiver<Item>) {
    crate::background::lower_priority();
    let mut pending: Vec<Item> = Vec::new();
    loop {
        let next = if pending.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(POLL)
        };
        match next {
            Ok(item) => pending.push(item),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let before = pending.len();
        pending.retain(|(value, since)| {
            if value.sole() {
                return false;
            }
            if since.elapsed() > MAX_HOLD {
                tracing::warn!(
                    held_for = ?since.elapsed(),
                    "a retired zone snapshot is still in use; letting go of it"
                );
                return false;
            }
            true
        });
        if pending.len() < before {
            give_back_free_memory();
        }
    }
}

/// Free memory at the top of a thread's malloc heap above which `free` gives it back.
///
/// glibc raises its trim threshold to twice the largest `mmap`ped block freed so far (up
/// to 64 MiB), and `malloc_trim` never trims the top of a thread's own heap. After a
/// zone load had freed a few large blocks, the parse thread's heap kept up to 18 MiB of
/// free memory resident for good (at 200,000 names: 90 MiB resident instead of 76, in
/// about one start in three). A fixed threshold keeps the trim at this size.
pub const TRIM_THRESHOLD: i32 = 1024 * 1024;

/// Blocks at least this large get their own mapping, returned whole when freed: glibc's
/// default, pinned because a fixed trim threshold also stops its dynamic adjustment.
pub const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Sets the allocator's fixed thresholds ([`TRIM_THRESHOLD`], [`MMAP_THRESHOLD`]). Call
/// once at start, before any thread.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets two of the allocator's parameters.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns the heap's free pages to the system. A zone load leaves its parse tree and the
/// freed old snapshot in malloc's free lists, hundreds of megabytes for a large zone, which
/// glibc would otherwise keep as resident memory. Runs here, off the answering threads.
pub fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the name of the thread that drops it.
    struct Probe(Arc<Mutex<Option<String>>>);

    impl Drop for Probe {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = std::thread::current().name().map(str::to_owned);
        }
    }

    #[test]
    fn the_last_holder_does_not_free_a_retired_value() {
        let dropped_by = Arc::new(Mutex::new(None));
        let value = Arc::new(Probe(dropped_by.clone()));
        let reader = value.clone();
        retire(value);
        std::thread::Builder::new()
            .name("answering".into())
            .spawn(move || drop(reader))
            .unwrap()
            .join()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while dropped_by.lock().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        assert_eq!(dropped_by.lock().unwrap().as_deref(), Some("reclaim"));
    }
}
