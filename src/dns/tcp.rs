//! DNS over TCP (RFC 7766): Roundel's own accept loop and connections on tokio, with the
//! same parser, answer engine and encoder as UDP ([`super::respond`]).
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
//!   a slot). After the per-connection query cap the connection is closed after the last
//!   answer.
//! * A message that is not to be answered (QR set, shorter than a header) gets no reply,
//!   as over UDP; the connection stays open.
//! * accept() errors: see [`crate::limits::accept`] (back off on EMFILE instead of
//!   spinning).
//!
//! Per connection: one task and three buffers that grow to the largest message seen;
//! nothing is allocated per query.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::shield::Shield;
use super::stats::{DnsStats, Transport};
use super::tcp_conns::{Admission, ConnGuard, ConnTable};
use crate::limits::accept::{AcceptErrors, Next};
use crate::limits::{Limits, counters};
use crate::zone::SnapshotCell;

/// Rounds of 1 ms the accept loop waits for evicted connections to close.
const EVICTION_WAIT_ROUNDS: u32 = 50;

/// Everything the connections of one server share.
#[derive(Debug)]
pub struct TcpContext {
    cell: Arc<SnapshotCell>,
    stats: Arc<DnsStats>,
    shield: Arc<Shield>,
    table: Arc<ConnTable>,
    idle_timeout: Duration,
    io_timeout: Duration,
    queries_per_connection: u32,
}

impl TcpContext {
    /// Connections answering from `cell`, at most `max_clients` at once, with the caps and
    /// timeouts of `limits`; `shield` answers cookies (TCP is not rate-limited).
    pub fn new(
        cell: Arc<SnapshotCell>,
        stats: Arc<DnsStats>,
        shield: Arc<Shield>,
        limits: &Limits,
        max_clients: u32,
    ) -> Arc<Self> {
        Arc::new(Self {
            cell,
            stats,
            shield,
            table: ConnTable::new(max_clients as usize, limits.tcp_clients_per_address),
            idle_timeout: limits.tcp_idle_timeout,
            io_timeout: limits.tcp_io_timeout,
            queries_per_connection: limits.tcp_queries_per_connection.max(1),
        })
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.table.len()
    }

    /// Closes every connection (the server stops).
    pub fn close_all(&self) {
        self.table.close_all();
    }
}

/// Accepts connections on `listener` until `stop` turns true.
pub async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<TcpContext>,
    mut stop: watch::Receiver<bool>,
) {
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
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                errors.accepted();
                match ctx.table.admit(peer.ip()) {
                    Admission::Admitted(guard) => {
                        ctx.stats.note_tcp_connection();
                        tokio::spawn(connection(stream, peer, ctx.clone(), guard));
                    }
                    // Dropping the stream closes it: the client sees the end at once
                    // rather than waiting in the backlog.
                    Admission::RefusedGlobal => counters::TCP_REFUSED_GLOBAL.inc(),
                    Admission::RefusedPerAddress => counters::TCP_REFUSED_PER_ADDRESS.inc(),
                }
            }
            Err(e) => match errors.failed(&e) {
                Next::Retry => {}
                Next::Sleep(d) => {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            },
        }
    }
}

/// Why a connection ended early.
enum End {
    /// The client closed, or the connection failed.
    Closed,
    /// The idle timeout, or evicted / stopped.
    Idle,
    /// The I/O timeout.
    Io,
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<TcpContext>,
    guard: ConnGuard,
) {
    // Responses go out as soon as they are written: a client waits for each one.
    let _ = stream.set_nodelay(true);
    let mut msg = Vec::new();
    let mut out = Vec::new();
    let mut frame = Vec::new();
    // Statistics shards by client port: connections run on any runtime thread at once.
    let shard = peer.port() as usize;
    for _ in 0..ctx.queries_per_connection {
        match one_query(
            &mut stream,
            peer,
            &ctx,
            &guard,
            shard,
            [&mut msg, &mut out, &mut frame],
        )
        .await
        {
            Ok(()) => {}
            Err(End::Closed) => return,
            Err(End::Idle) => return,
            Err(End::Io) => {
                counters::TCP_IO_TIMEOUTS.inc();
                return;
            }
        }
    }
    counters::TCP_QUERY_CAP.inc();
    let _ = tokio::time::timeout(ctx.io_timeout, stream.shutdown()).await;
}

async fn one_query(
    stream: &mut TcpStream,
    peer: SocketAddr,
    ctx: &TcpContext,
    guard: &ConnGuard,
    shard: usize,
    [msg, out, frame]: [&mut Vec<u8>; 3],
) -> Result<(), End> {
    guard.idle();
    let mut len = [0u8; 2];
    let first = tokio::select! {
        r = tokio::time::timeout(ctx.idle_timeout, stream.read(&mut len)) => r,
        () = guard.state().kill.notified() => return Err(End::Idle),
    };
    let got = match first {
        Err(_) => {
            counters::TCP_IDLE_TIMEOUTS.inc();
            return Err(End::Idle);
        }
        Ok(Ok(0) | Err(_)) => return Err(End::Closed),
        Ok(Ok(n)) => n,
    };
    guard.busy();
    let read_rest = async {
        if got == 1 {
            stream.read_exact(&mut len[1..]).await?;
        }
        msg.resize(u16::from_be_bytes(len) as usize, 0);
        stream.read_exact(msg).await.map(|_| ())
    };
    match tokio::time::timeout(ctx.io_timeout, read_rest).await {
        Err(_) => return Err(End::Io),
        Ok(Err(_)) => return Err(End::Closed),
        Ok(Ok(())) => {}
    }
    let received = Instant::now();
    {
        let snapshot = ctx.cell.load();
        super::respond(
            msg,
            peer.ip(),
            &snapshot,
            &ctx.shield,
            out,
            &ctx.stats,
            shard,
            received,
            Transport::Tcp,
        );
    }
    if out.is_empty() {
        return Ok(());
    }
    frame.clear();
    frame.extend_from_slice(&(out.len() as u16).to_be_bytes());
    frame.extend_from_slice(out);
    match tokio::time::timeout(ctx.io_timeout, stream.write_all(frame)).await {
        Err(_) => Err(End::Io),
        Ok(Err(_)) => Err(End::Closed),
        Ok(Ok(())) => Ok(()),
    }
}
