//! Supervision of probe tasks: a probe that panics (a bug, or a library that panics on
//! odd input) is restarted, counted and logged, instead of leaving its node frozen in
//! its last state with nobody noticing.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::task::JoinHandle;

/// Pause before restarting a probe that panicked, so a probe that panics at once cannot
/// spin a core.
pub const RESTART_DELAY: Duration = Duration::from_millis(100);

/// Aborts the task it holds when dropped: aborting the supervisor aborts its probe.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `make(restarts)` as a task and starts it again, after [`RESTART_DELAY`], each time
/// it panics, counting the restarts in `panics`; `what` names the probe in the log.
/// Returns when the task ends without panicking. Aborting the returned task aborts the
/// running one.
pub fn supervise<F, Fut>(what: String, panics: Arc<AtomicU64>, mut make: F) -> JoinHandle<()>
where
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut restarts = 0u64;
        loop {
            let mut task = AbortOnDrop(tokio::spawn(make(restarts)));
            let ended = (&mut task.0).await;
            drop(task);
            match ended {
                Err(e) if e.is_panic() => {
                    panics.fetch_add(1, Relaxed);
                    restarts += 1;
                    tracing::error!(
                        target: "roundel::health",
                        probe = %what,
                        restarts,
                        "probe task panicked: restarting it with the node's current state"
                    );
                    tokio::time::sleep(RESTART_DELAY).await;
                }
                _ => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_probe_is_restarted_and_counted() {
        let panics = Arc::new(AtomicU64::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let task = supervise("test".into(), panics.clone(), move |restarts| {
            let tx = if restarts == 2 { tx.take() } else { None };
            async move {
                match tx {
                    Some(tx) => {
                        let _ = tx.send(restarts);
                    }
                    None => panic!("probe bug"),
                }
            }
        });
        let restarts = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("restarted within the bound")
            .unwrap();
        assert_eq!(restarts, 2);
        assert_eq!(panics.load(Relaxed), 2);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("ends when the probe ends")
            .unwrap();
    }

    #[tokio::test]
    async fn aborting_the_supervisor_aborts_the_probe() {
        let panics = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let task = supervise("test".into(), panics, move |_| {
            let tx = tx.clone();
            async move {
                // Holds the sender until aborted.
                std::future::pending::<()>().await;
                drop(tx);
            }
        });
        tokio::task::yield_now().await;
        task.abort();
        let closed = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(closed, Ok(None), "the probe task was not aborted");
    }
}
