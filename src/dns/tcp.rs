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
//! Per connection: one task and three buffers that grow to the largest batch seen;
//! nothing is allocated per query. Reads are batched: one read takes every pipelined query
//! the client has sent, and their answers go out in one write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::shield::Shield;
use super::stats::{DnsStats, Transport};
use super::tcp_conns::{address_key, table};
use crate::limits::accept::{AcceptErrors, Next};
use crate::limits::slots::{Admission, SlotGuard, SlotTable};
use crate::limits::{Limits, counters};
use crate::shutdown::Stopping;
use crate::zone::SnapshotCell;

/// Rounds of 1 ms the accept loop waits for evicted connections to close.
const EVICTION_WAIT_ROUNDS: u32 = 50;

/// Everything the connections of one server share.
#[derive(Debug)]
pub struct TcpContext {
    cell: Arc<SnapshotCell>,
    stats: Arc<DnsStats>,
    shield: Arc<Shield>,
    table: Arc<SlotTable>,
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
            table: table(max_clients as usize, limits.tcp_clients_per_address),
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
                        }
                        ctx.stats.note_tcp_connection();
                        tokio::spawn(connection(stream, peer, ctx.clone(), guard));
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

/// Why a connection ended.
enum End {
    /// The client closed, or the connection failed.
    Closed,
    /// The idle timeout, or evicted / stopped.
    Idle,
    /// The I/O timeout.
    Io,
    /// The per-connection query cap was reached.
    Cap,
}

/// Bytes a connection reads at once when no longer message is pending: room for about a
/// hundred pipelined queries (RFC 7766 section 6.2.1.1) in one read.
const READ_CHUNK: usize = 4096;

/// Responses a connection collects before writing them out (more when one response is
/// longer): bounds its memory when a client pipelines many queries with long answers.
const OUTPUT_HIGH: usize = 16 * 1024;

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<TcpContext>,
    guard: SlotGuard,
) {
    // Responses go out as soon as they are written: a client waits for each one.
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        input: Vec::new(),
        filled: 0,
        out: Vec::new(),
        output: Vec::new(),
        left: ctx.queries_per_connection,
        // Statistics shards by client port: connections run on any runtime thread at once.
        shard: peer.port() as usize,
        partial_since: None,
    };
    match conn.serve(&mut stream, peer, &ctx, &guard).await {
        End::Closed | End::Idle => {}
        End::Io => counters::TCP_IO_TIMEOUTS.inc(),
        End::Cap => {
            counters::TCP_QUERY_CAP.inc();
            let _ = tokio::time::timeout(ctx.io_timeout, stream.shutdown()).await;
        }
    }
}

/// One connection's buffers: nothing is allocated per query.
struct Conn {
    /// Bytes read and not yet answered: `input[..filled]`, complete messages first.
    input: Vec<u8>,
    filled: usize,
    /// One response.
    out: Vec<u8>,
    /// The framed responses to the messages of one read, written at once.
    output: Vec<u8>,
    /// Queries this connection may still ask (the per-connection cap).
    left: u32,
    shard: usize,
    /// When the first byte of the message being read arrived: the rest must follow within
    /// the I/O timeout.
    partial_since: Option<tokio::time::Instant>,
}

impl Conn {
    /// Reads, answers and writes until the connection ends. Each read takes what the client
    /// has sent; every complete message in it is answered in order, and the answers go out
    /// in one write: a client that pipelines costs two system calls per read, not three
    /// per query.
    async fn serve(
        &mut self,
        stream: &mut TcpStream,
        peer: SocketAddr,
        ctx: &TcpContext,
        guard: &SlotGuard,
    ) -> End {
        loop {
            let consumed = self.answer_buffered(peer, ctx);
            if !self.output.is_empty() {
                match tokio::time::timeout(ctx.io_timeout, stream.write_all(&self.output)).await {
                    Err(_) => return End::Io,
                    Ok(Err(_)) => return End::Closed,
                    Ok(Ok(())) => self.output.clear(),
                }
            }
            if self.left == 0 {
                return End::Cap;
            }
            if self.complete() {
                // `output` filled up before every buffered message was answered.
                continue;
            }
            if self.filled == 0 {
                self.partial_since = None;
            } else if consumed || self.partial_since.is_none() {
                self.partial_since = Some(tokio::time::Instant::now());
            }
            self.make_room();
            let buf = &mut self.input[self.filled..];
            let read = match self.partial_since {
                None => {
                    guard.idle();
                    let r = tokio::select! {
                        r = tokio::time::timeout(ctx.idle_timeout, stream.read(buf)) => r,
                        () = guard.slot().kill.notified() => return End::Idle,
                    };
                    guard.busy();
                    match r {
                        Err(_) => {
                            counters::TCP_IDLE_TIMEOUTS.inc();
                            return End::Idle;
                        }
                        Ok(r) => r,
                    }
                }
                Some(since) => {
                    match tokio::time::timeout_at(since + ctx.io_timeout, stream.read(buf)).await {
                        Err(_) => return End::Io,
                        Ok(r) => r,
                    }
                }
            };
            match read {
                Ok(0) | Err(_) => return End::Closed,
                Ok(n) => self.filled += n,
            }
        }
    }

    /// Answers every complete message buffered (up to the per-connection cap) into
    /// `output`, and moves what is left to the front. Returns whether a message was
    /// answered.
    fn answer_buffered(&mut self, peer: SocketAddr, ctx: &TcpContext) -> bool {
        let mut at = 0;
        let received = Instant::now();
        let snapshot = ctx.cell.load();
        while self.left > 0 && self.filled - at >= 2 && self.output.len() < OUTPUT_HIGH {
            let len = u16::from_be_bytes([self.input[at], self.input[at + 1]]) as usize;
            if self.filled - at - 2 < len {
                break;
            }
            super::respond(
                &self.input[at + 2..at + 2 + len],
                peer.ip(),
                &snapshot,
                &ctx.shield,
                &mut self.out,
                &ctx.stats,
                self.shard,
                received,
                Transport::Tcp,
            );
            at += 2 + len;
            self.left -= 1;
            // A message that is not to be answered gets no reply, as over UDP.
            if !self.out.is_empty() {
                self.output
                    .extend_from_slice(&(self.out.len() as u16).to_be_bytes());
                self.output.extend_from_slice(&self.out);
            }
        }
        self.input.copy_within(at..self.filled, 0);
        self.filled -= at;
        at > 0
    }

    /// Whether a complete message is buffered.
    fn complete(&self) -> bool {
        self.filled >= 2
            && self.filled - 2 >= u16::from_be_bytes([self.input[0], self.input[1]]) as usize
    }

    /// Grows the input buffer so that the next read has room: a chunk, or the whole
    /// message being read when it is longer.
    fn make_room(&mut self) {
        let pending = if self.filled >= 2 {
            2 + u16::from_be_bytes([self.input[0], self.input[1]]) as usize
        } else {
            0
        };
        let want = pending.max(self.filled + READ_CHUNK / 2).max(READ_CHUNK);
        if self.input.len() < want {
            self.input.resize(want, 0);
        }
    }
}
