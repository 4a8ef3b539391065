//! DNS over TCP (RFC 7766): Roundel's own accept loop (on tokio) and connections (on
//! dedicated threads, [`super::tcp_worker`]), with the same parser, answer engine and
//! encoder as UDP ([`super::respond`]).
//!
//! * Framing: each message is preceded by its length in two bytes (RFC 1035 section
//!   4.2.2). Pipelined queries are read and answered one after the other, so the answers go
//!   out in the order of the queries.
//! * Caps ([`super::tcp_conns`]): a global cap (from the descriptor budget,
//!   [`crate::limits::Budget`]) and a per-address cap; at the global cap the longest idle
//!   connection is closed to make room, or the new one is refused when none is idle.
//! * Timeouts: a connection waiting for its next query is closed after the idle timeout;
//!   once the first byte of a message arrived the rest must follow within the I/O timeout,
//!   and a response must be written within it too (a client that stops reading cannot hold
//!   a slot). Both are deadlines, checked within [`super::tcp_worker::TIMER_SLACK`]. After
//!   the per-connection query cap the connection is closed after the last answer.
//! * A message that is not to be answered (QR set, shorter than a header) gets no reply,
//!   as over UDP; the connection stays open.
//! * accept() errors: see [`crate::limits::accept`] (back off on EMFILE instead of
//!   spinning).
//!
//! Per connection: three buffers that grow to the largest batch seen
//! ([`super::tcp_conn`]); nothing is allocated per query. Reads are batched: one read
//! takes every pipelined query the client has sent, and their answers go out in one write.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::shield::Shield;
use super::stats::DnsStats;
use super::tcp_conns::{address_key, table};
use super::tcp_worker::{Settings, Workers};
use crate::limits::accept::{AcceptErrors, Next};
use crate::limits::slots::{Admission, SlotTable};
use crate::limits::{Limits, counters};
use crate::shutdown::Stopping;
use crate::zone::SnapshotCell;

/// Rounds of 1 ms the accept loop waits for evicted connections to close.
const EVICTION_WAIT_ROUNDS: u32 = 50;

/// Everything the connections of one server share.
#[derive(Debug)]
pub struct TcpContext {
    stats: Arc<DnsStats>,
    table: Arc<SlotTable>,
    workers: Workers,
}

impl TcpContext {
    /// Connections answering from `cell` on `threads` threads, at most `max_clients` at
    /// once, with the caps and timeouts of `limits`; `shield` answers cookies (TCP is not
    /// rate-limited).
    pub fn new(
        cell: Arc<SnapshotCell>,
        stats: Arc<DnsStats>,
        shield: Arc<Shield>,
        limits: &Limits,
        max_clients: u32,
        threads: usize,
    ) -> std::io::Result<Arc<Self>> {
        let workers = Workers::start(
            threads,
            &Settings {
                cell,
                stats: stats.clone(),
                shield,
                idle_timeout: limits.tcp_idle_timeout,
                io_timeout: limits.tcp_io_timeout,
                queries_per_connection: limits.tcp_queries_per_connection.max(1),
            },
        )?;
        Ok(Arc::new(Self {
            stats,
            table: table(max_clients as usize, limits.tcp_clients_per_address),
            workers,
        }))
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.table.len()
    }

    /// Closes every connection and ends the TCP threads (the server stops).
    pub fn close_all(&self) {
        self.table.close_all();
        self.workers.stop();
    }
}

/// Accepts connections on `listener` until the server stops.
pub async fn accept_loop(listener: TcpListener, ctx: Arc<TcpContext>, mut stop: Stopping) {
    let mut errors = AcceptErrors::new("dns-tcp", &counters::TCP_ACCEPT_ERRORS);
    loop {
        // Under a burst of new connections at the cap, let the evicted ones close before
        // taking more: the newcomers wait in the kernel's backlog instead of being refused.
        for _ in 0..EVICTION_WAIT_ROUNDS {
            if !ctx.table.evictions_full() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = stop.wait() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                errors.accepted();
                match ctx.table.admit(Some(address_key(peer.ip()))) {
                    Admission::Admitted { guard, evicted } => {
                        if evicted {
                            counters::TCP_EVICTED.inc();
                            ctx.workers.check_kills();
                        }
                        ctx.stats.note_tcp_connection();
                        // Out of tokio's reactor, onto a TCP thread's. Responses go out as
                        // soon as they are written: a client waits for each one.
                        if let Ok(stream) = stream.into_std() {
                            let _ = stream.set_nodelay(true);
                            ctx.workers.hand(stream, peer, guard);
                        }
                    }
                    // Dropping the stream closes it: the client sees the end at once
                    // rather than waiting in the backlog.
                    Admission::RefusedGlobal => counters::TCP_REFUSED_GLOBAL.inc(),
                    Admission::RefusedPerClient => counters::TCP_REFUSED_PER_ADDRESS.inc(),
                }
            }
            Err(e) => match errors.failed(&e) {
                Next::Retry => {}
                Next::Sleep(d) => {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        () = stop.wait() => return,
                    }
                }
            },
        }
    }
}
