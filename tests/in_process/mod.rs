//! `roundel::server::serve` in-process, as every test harness runs it: on a thread of its
//! own with its own tokio runtime, on listeners the harness bound (port 0), stopped
//! through the shutdown future `serve` takes, and joined (bounded) on stop or drop.
//!
//! Each harness (`common/roundel_on.rs`, `ops_support`, `cluster_support`,
//! `hardening_support`) includes this file with `#[path]`.

#![allow(dead_code)]

use std::thread::JoinHandle;
use std::time::Duration;

use roundel::server::{Listeners, ServeOptions, serve};

/// A running `serve`.
pub struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl InProcess {
    /// Starts `serve(opts, listeners, ..)` on a thread named `name`.
    pub fn spawn(name: &str, opts: ServeOptions, listeners: Listeners) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(serve(opts, listeners, async move {
                    let _ = rx.await;
                }))
                .map_err(|e| e.to_string())
            })
            .expect("spawn the server thread");
        Self {
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// `serve`'s result if it has returned (a start-up failure, or a stop), else `None`.
    pub fn exited(&mut self) -> Option<String> {
        if !self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            return None;
        }
        Some(match self.thread.take().unwrap().join() {
            Ok(Ok(())) => "serve returned".to_owned(),
            Ok(Err(e)) => e,
            Err(_) => "the server thread panicked".to_owned(),
        })
    }

    /// Whether `serve` is still running.
    pub fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Triggers the shutdown and waits (at most 10 s) for `serve` to return; an error
    /// `serve` returned, or a thread that did not stop, is reported on stderr.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let Some(t) = self.thread.take() else {
            return;
        };
        for _ in 0..500 {
            if t.is_finished() {
                match t.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("roundel::server::serve returned an error: {e}"),
                    Err(_) => eprintln!("the roundel server thread panicked"),
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("the roundel server did not stop within 10 s of shutdown");
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
