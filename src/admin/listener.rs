//! The admin listener's accept loop: a cap on connections, a header read timeout, an idle
//! timeout and a body limit, so that slow or idle HTTP clients cannot take the process's
//! descriptors or memory (axum's `serve` has none of these).
//!
//! * At the cap a new connection is closed at once (counted in
//!   `roundel_admin_connections_refused_total`).
//! * A request header must be complete within the header timeout (slowloris).
//! * A connection with no traffic for the idle timeout is closed.
//! * Bodies are limited ([`axum::extract::DefaultBodyLimit`]), and state-changing calls are
//!   authorised from their headers before any body is read ([`super::require_token`]).
//! * accept() errors back off as for DNS over TCP ([`crate::limits::accept`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::limits::accept::{AcceptErrors, Next};
use crate::limits::{Limits, counters};

/// The admin listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct AdminLimits {
    /// Connections at once.
    pub max_connections: usize,
    /// Time to send a complete request header.
    pub header_timeout: Duration,
    /// Time a connection may stay without traffic.
    pub idle_timeout: Duration,
    /// Largest request body, bytes.
    pub body_limit: usize,
}

impl AdminLimits {
    /// The limits of `limits`, with the connection cap from the descriptor budget.
    pub fn new(limits: &Limits, max_connections: u32) -> Self {
        Self {
            max_connections: max_connections.max(1) as usize,
            header_timeout: limits.admin_header_timeout,
            idle_timeout: limits.admin_idle_timeout,
            body_limit: limits.admin_body_limit,
        }
    }
}

impl Default for AdminLimits {
    fn default() -> Self {
        Self::new(&Limits::default(), crate::limits::DEFAULT_ADMIN_CONNECTIONS)
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then open connections finish
/// their current request.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: AdminLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut errors = AcceptErrors::new("admin", &counters::ADMIN_ACCEPT_ERRORS);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _peer)) => {
                errors.accepted();
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    counters::ADMIN_REFUSED.inc();
                    continue;
                };
                let router = router.clone();
                let stop = stop_rx.clone();
                tokio::spawn(async move {
                    connection(stream, router, limits, stop).await;
                    drop(permit);
                });
            }
            Err(e) => match errors.failed(&e) {
                Next::Retry => {}
                Next::Sleep(d) => tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = &mut shutdown => break,
                },
            },
        }
    }
    let _ = stop_tx.send(true);
    // Connections end on their own (graceful shutdown), bounded by the caller.
    let _ = slots
        .acquire_many(limits.max_connections.min(u32::MAX as usize) as u32)
        .await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: AdminLimits,
    mut stop: watch::Receiver<bool>,
) {
    let epoch = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let io = Activity {
        inner: stream,
        last: last.clone(),
        epoch,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let service = hyper_util::service::TowerToHyperService::new(router);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let idle_for =
            Duration::from_millis(epoch.elapsed().as_millis() as u64 - last.load(Relaxed));
        let Some(left) = limits
            .idle_timeout
            .checked_sub(idle_for)
            .filter(|d| !d.is_zero())
        else {
            // Idle too long: dropping the connection closes it.
            return;
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep(left) => {}
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A stream that notes when it last moved bytes (milliseconds since `epoch`).
struct Activity {
    inner: TcpStream,
    last: Arc<AtomicU64>,
    epoch: Instant,
}

impl Activity {
    fn touch(&self) {
        self.last
            .store(self.epoch.elapsed().as_millis() as u64, Relaxed);
    }
}

impl AsyncRead for Activity {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.touch();
        }
        r
    }
}

impl AsyncWrite for Activity {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
