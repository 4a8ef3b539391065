//! Background work that must not slow answers down: zone loads run on a thread of their
//! own at a lower scheduling priority.
//!
//! A reload parses and indexes the whole zone data, seconds of CPU for a million names.
//! On a core it shares with a UDP worker, at equal priority the scheduler would split the
//! core evenly and the worker's answers would wait. At nice [`NICE`] the kernel gives the
//! loader the time the workers leave (CFS weights about 1:10), so answers keep flowing
//! and the load takes longer only when the core is busy answering.

use std::future::Future;

/// The nice value of background threads (Linux: per thread).
pub const NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`NICE`]. Best effort: where that is
/// not possible the thread keeps its priority.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on our own thread id changes only this thread's nice value.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE);
    }
}

/// Runs `f` on a new thread named `name`, at background priority if `low`; the future
/// resolves to its result, or to `None` if the thread could not start or `f` panicked.
pub fn run<T, F>(name: &str, low: bool, f: F) -> impl Future<Output = Option<T>> + use<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if low {
                lower_priority();
            }
            let _ = tx.send(f());
        });
    async move {
        spawned.ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn runs_the_closure_at_lower_priority() {
        let nice = super::run("bg-test", true, || {
            // SAFETY: getpriority on our own thread.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        })
        .await;
        assert!(nice.is_some_and(|n| n >= super::NICE.min(19)), "{nice:?}");
    }
}
