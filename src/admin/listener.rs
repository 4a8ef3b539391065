//! The admin listener's accept loop: a cap on connections, a header read timeout, an idle
//! timeout and a body limit, so that slow or idle HTTP clients cannot take the process's
//! descriptors or memory (axum's `serve` has none of these).
//!
//! * At the cap the connection idle the longest is closed to make room (counted in
//!   `roundel_admin_connections_evicted_total`), so that idle clients cannot lock
//!   operators out; only when every connection is being answered is a new one closed at
//!   once (`roundel_admin_connections_refused_total`). The table is
//!   [`crate::limits::slots`], as for DNS over TCP; at most
//!   [`ADMIN_EVICTIONS_IN_FLIGHT`] evicted connections are still closing at once (the
//!   accept loop waits for them), and that socket comes out of the budget's fixed share
//!   ([`crate::limits::FIXED_DESCRIPTORS`]).
//! * A request header must be complete within the header timeout (slowloris).
//! * A connection with no traffic for the idle timeout is closed.
//! * Bodies are limited ([`axum::extract::DefaultBodyLimit`]), and state-changing calls are
//!   authorised from their headers before any body is read (`require_token`).
//! * accept() errors back off as for DNS over TCP ([`crate::limits::accept`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::limits::accept::{AcceptErrors, Next};
use crate::limits::slots::{Admission, SlotCaps, SlotGuard, SlotTable};
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

/// Admin connections evicted at the cap but not yet closed, at most.
pub const ADMIN_EVICTIONS_IN_FLIGHT: usize = 1;

/// Rounds of 1 ms the accept loop waits for an evicted connection to close.
const EVICTION_WAIT_ROUNDS: u32 = 50;

/// Serves `router` on `listener` until `shutdown` completes; then open connections finish
/// their current request.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: AdminLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let table = SlotTable::new(SlotCaps {
        max: limits.max_connections,
        per_client: None,
        evictions_in_flight: ADMIN_EVICTIONS_IN_FLIGHT,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut errors = AcceptErrors::new("admin", &counters::ADMIN_ACCEPT_ERRORS);
    tokio::pin!(shutdown);
    loop {
        // After an eviction, let the evicted connection close before taking the next one:
        // newcomers wait in the kernel's backlog instead of being refused.
        for _ in 0..EVICTION_WAIT_ROUNDS {
            if !table.evictions_full() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _peer)) => {
                errors.accepted();
                // Dropping the stream closes it: the client sees the end at once.
                let guard = match table.admit(None) {
                    Admission::Admitted { guard, evicted } => {
                        if evicted {
                            counters::ADMIN_EVICTED.inc();
                        }
                        guard
                    }
                    Admission::RefusedGlobal | Admission::RefusedPerClient => {
                        counters::ADMIN_REFUSED.inc();
                        continue;
                    }
                };
                let router = router.clone();
                let stop = stop_rx.clone();
                tokio::spawn(connection(stream, router, limits, stop, guard));
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
    table.all_closed().await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: AdminLimits,
    mut stop: watch::Receiver<bool>,
    guard: SlotGuard,
) {
    let guard = Arc::new(guard);
    let io = Activity {
        inner: stream,
        guard: guard.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let inner = hyper_util::service::TowerToHyperService::new(router);
    let busy_of = guard.clone();
    // While a request is answered the connection is busy and is not evicted.
    let service = hyper::service::service_fn(move |req| {
        busy_of.busy();
        let answer = inner.call(req);
        let idle_of = busy_of.clone();
        async move {
            let r = answer.await;
            // The answer is out: idle from now.
            idle_of.idle();
            r
        }
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let idle_for = Duration::from_millis(guard.idle_ms());
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
            // Evicted at the cap: dropping the connection closes it.
            () = guard.slot().kill.notified() => return,
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A stream that notes in its slot when it last moved bytes.
struct Activity {
    inner: TcpStream,
    guard: Arc<SlotGuard>,
}

impl Activity {
    fn touch(&self) {
        self.guard.touch();
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
