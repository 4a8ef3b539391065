//! What a listener does when `accept()` fails.
//!
//! Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the pending connection
//! stays in the backlog and the listener stays readable: retrying at once spins a core at
//! 100% and gets nowhere. The listener sleeps instead, a bounded, growing delay, and logs
//! once per episode (from the first error to the next accepted connection). A connection
//! aborted or reset before it was accepted (ECONNABORTED, ECONNRESET, EPROTO) concerns only
//! that client: carry on.

use std::io::Error;
use std::time::Duration;

use super::counters::Counter;

/// First back-off delay after a resource error.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// Longest back-off delay (the delay doubles up to it).
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How to go on after an accept error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Accept again at once.
    Retry,
    /// Sleep this long, then accept again.
    Sleep(Duration),
}

/// Whether `e` says this process (or host) has run out of descriptors or memory.
pub fn is_resource_exhaustion(e: &Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Per-listener accept error state.
#[derive(Debug)]
pub struct AcceptErrors {
    listener: &'static str,
    counter: &'static Counter,
    backoff: Option<Duration>,
    episode_errors: u64,
}

impl AcceptErrors {
    /// State for the listener named `listener` (for logs), counting into `counter`.
    pub fn new(listener: &'static str, counter: &'static Counter) -> Self {
        Self {
            listener,
            counter,
            backoff: None,
            episode_errors: 0,
        }
    }

    /// A connection was accepted: an episode of errors, if any, is over.
    #[inline]
    pub fn accepted(&mut self) {
        if self.backoff.take().is_some() {
            tracing::warn!(
                listener = self.listener,
                errors = self.episode_errors,
                "accepting connections again"
            );
            self.episode_errors = 0;
        }
    }

    /// `accept()` failed with `e`: what to do next.
    pub fn failed(&mut self, e: &Error) -> Next {
        self.counter.inc();
        if matches!(
            e.raw_os_error(),
            Some(libc::ECONNABORTED | libc::ECONNRESET | libc::EPROTO | libc::EINTR)
        ) {
            return Next::Retry;
        }
        self.episode_errors += 1;
        let delay = match self.backoff {
            None => {
                tracing::warn!(
                    listener = self.listener,
                    error = %e,
                    resources = is_resource_exhaustion(e),
                    "accept failed; backing off (logged once until a connection is accepted)"
                );
                FIRST_BACKOFF
            }
            Some(d) => (d * 2).min(MAX_BACKOFF),
        };
        self.backoff = Some(delay);
        Next::Sleep(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_errors_back_off_growing_and_bounded() {
        static C: Counter = Counter::new();
        let mut a = AcceptErrors::new("test", &C);
        let emfile = Error::from_raw_os_error(libc::EMFILE);
        let mut delays = Vec::new();
        for _ in 0..10 {
            match a.failed(&emfile) {
                Next::Sleep(d) => delays.push(d),
                Next::Retry => panic!("EMFILE must not be retried at once"),
            }
        }
        assert_eq!(delays[0], FIRST_BACKOFF);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*delays.last().unwrap(), MAX_BACKOFF);
        a.accepted();
        assert_eq!(a.failed(&emfile), Next::Sleep(FIRST_BACKOFF));
        let aborted = Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(a.failed(&aborted), Next::Retry);
        assert_eq!(C.get(), 12);
        assert!(is_resource_exhaustion(&Error::from_raw_os_error(
            libc::ENFILE
        )));
    }
}
