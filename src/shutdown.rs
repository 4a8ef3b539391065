//! One shutdown signal for the whole server, passed down to everything that runs until
//! the server stops: UDP worker threads, TCP accept loops, the admin listener, the SIGHUP
//! and file-watch reload tasks.
//!
//! A [`Shutdown`] is triggered once; each [`Stopping`] handle can be asked lock-free
//! whether it was ([`Stopping::is_set`], for the UDP threads' hot loop) or awaited
//! ([`Stopping::wait`], for tasks). Nothing is aborted or stopped by dropping a guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// The trigger: [`Shutdown::trigger`] tells every [`Stopping`] handle.
#[derive(Debug)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    tx: watch::Sender<bool>,
}

/// A handle on the shutdown signal; clone one per task or thread.
#[derive(Debug, Clone)]
pub struct Stopping {
    flag: Arc<AtomicBool>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self {
            flag: Arc::new(AtomicBool::new(false)),
            tx: watch::channel(false).0,
        }
    }

    /// A handle to pass down.
    pub fn stopping(&self) -> Stopping {
        Stopping {
            flag: self.flag.clone(),
            rx: self.tx.subscribe(),
        }
    }

    /// Tells every handle that the server stops.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.tx.send_replace(true);
    }
}

impl Stopping {
    /// Whether the server stops (one relaxed load: fine for a hot loop).
    #[inline]
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Resolves when the server stops (at once if it already does).
    pub async fn wait(&mut self) {
        // An error means the trigger is gone, which only happens as the server ends.
        let _ = self.rx.wait_for(|v| *v).await;
    }

    /// [`Stopping::wait`] as an owned future, for APIs that take one.
    pub async fn stopped(mut self) {
        self.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_handle_sees_the_trigger() {
        let s = Shutdown::new();
        let a = s.stopping();
        let mut b = s.stopping();
        assert!(!a.is_set());
        let waiter = tokio::spawn(async move { b.wait().await });
        s.trigger();
        assert!(a.is_set());
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        // A handle taken afterwards is stopped at once.
        tokio::time::timeout(Duration::from_secs(5), s.stopping().stopped())
            .await
            .expect("already stopped");
    }
}
