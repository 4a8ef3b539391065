//! One DNS-over-TCP connection on a TCP thread ([`super::tcp_worker`]): its buffers, its
//! deadline, and what it does when its socket is ready.
//!
//! The socket is non-blocking and registered edge-triggered for reading and writing. A
//! read that does not fill the buffer has emptied the socket's receive queue, so the
//! connection waits for the next edge without the extra read that would only say
//! `EAGAIN`; a read that fills it reads again. Every complete message read is answered in
//! order (RFC 7766 section 6.2.1.1), and the answers go out in one write.
//!
//! Deadlines, not timers: the connection keeps one instant, the end of its idle time
//! (nothing pending) or of its I/O time (from the first byte of a message, or from a
//! write that could not complete), computed from the time its thread read once after
//! waking. The thread closes connections past their deadline ([`Conn::deadline`]).

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::shield::Shield;
use super::stats::{Counts, DnsStats, Transport, ZoneTable};
use crate::limits::counters;
use crate::limits::slots::SlotGuard;
use crate::zone::Snapshot;
use crate::zone::name::MAX_NAME_LEN;

/// Bytes a connection reads at once when no longer message is pending: room for about a
/// hundred pipelined queries (RFC 7766 section 6.2.1.1) in one read.
const READ_CHUNK: usize = 4096;

/// Full reads one connection may make per turn: a client that keeps its socket full must
/// not keep its thread from the other connections. Past it the connection takes another
/// turn after the thread's other ready sockets ([`Conn::wants_turn`]).
pub const READS_PER_TURN: u32 = 8;

/// Responses a connection collects before writing them out (more when one response is
/// longer): bounds its memory when a client pipelines many queries with long answers.
const OUTPUT_HIGH: usize = 16 * 1024;

/// What the connection's thread shares with all its connections.
#[derive(Debug)]
pub struct Shared<'a> {
    /// The zones to answer from (read once per wake-up).
    pub snapshot: &'a Snapshot,
    /// Cookies.
    pub shield: &'a Shield,
    /// Statistics.
    pub stats: &'a DnsStats,
    /// The per-zone counters (read once per wake-up, as the snapshot).
    pub zones: &'a ZoneTable,
    /// When the thread woke up.
    pub now: Instant,
    /// Closes a connection waiting for its next query.
    pub idle_timeout: Duration,
    /// Bounds a message being read, and a response being written.
    pub io_timeout: Duration,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed, or the connection failed.
    Closed,
    /// The idle timeout.
    Idle,
    /// The I/O timeout.
    Io,
    /// The per-connection query cap was reached, the answers written and the end of
    /// the stream sent; the client closed its side, or the drain's time ran out.
    Cap,
    /// Evicted at the cap, or the server stops.
    Killed,
}

/// One connection's socket, buffers and deadline: nothing is allocated per query.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    ip: IpAddr,
    /// Statistics shard (by client port).
    shard: usize,
    /// The question name of the message being answered (see [`super::wire::NameBuf`]).
    name_buf: super::wire::NameBuf,
    /// The connection's place in the table (eviction, per-address count).
    pub guard: SlotGuard,
    /// Bytes read and not yet answered: `input[..filled]`, complete messages first.
    input: Vec<u8>,
    filled: usize,
    /// One response.
    out: Vec<u8>,
    /// The framed responses to the messages of one read; `output[..written]` is sent.
    output: Vec<u8>,
    written: usize,
    /// Queries this connection may still ask (the per-connection cap).
    left: u32,
    /// When the first byte of the message being read arrived.
    partial_since: Option<Instant>,
    /// When a write first could not complete.
    blocked_since: Option<Instant>,
    /// A readable edge may not have been read (a blocked write came first, or the turn's
    /// reads ran out).
    read_owed: bool,
    /// The turn's reads ran out with data still to read.
    turn_over: bool,
    /// Past the query cap: the end of the stream is sent, and what the client still
    /// sends is read and dropped until it closes (see [`Conn::drain`]).
    draining: bool,
    deadline: Instant,
    on_deadline: End,
}

impl Conn {
    /// A connection just accepted at `now`: idle until its first byte.
    pub fn new(
        stream: TcpStream,
        peer: std::net::SocketAddr,
        guard: SlotGuard,
        queries: u32,
        now: Instant,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            stream,
            ip: peer.ip(),
            shard: peer.port() as usize,
            name_buf: [0; MAX_NAME_LEN],
            guard,
            input: Vec::new(),
            filled: 0,
            out: Vec::new(),
            output: Vec::new(),
            written: 0,
            left: queries.max(1),
            partial_since: None,
            blocked_since: None,
            read_owed: true,
            turn_over: false,
            draining: false,
            deadline: now + idle_timeout,
            on_deadline: End::Idle,
        }
    }

    /// When the connection is to be closed if nothing happens, and why.
    #[inline]
    pub fn deadline(&self) -> (Instant, End) {
        (self.deadline, self.on_deadline)
    }

    /// Whether the connection stopped reading with data left ([`READS_PER_TURN`]): no edge
    /// will come for it, so its thread calls [`Conn::ready`] again on its own.
    #[inline]
    pub fn wants_turn(&self) -> bool {
        self.turn_over
    }

    /// The socket is ready (`readable`: for reading): reads, answers and writes as far as
    /// it goes without blocking, at most [`READS_PER_TURN`] reads. `Err` ends the
    /// connection.
    pub fn ready(&mut self, readable: bool, sh: &Shared<'_>) -> Result<(), End> {
        let mut may_read = readable || self.read_owed;
        self.read_owed = false;
        self.turn_over = false;
        if self.draining {
            return self.drain(may_read);
        }
        let mut reads = 0;
        let mut answered = false;
        loop {
            if !self.flush()? {
                // Readable edges meanwhile are not read now: owe a read for later.
                self.read_owed |= may_read;
                let since = *self.blocked_since.get_or_insert(sh.now);
                self.deadline = since + sh.io_timeout;
                self.on_deadline = End::Io;
                return Ok(());
            }
            self.blocked_since = None;
            if self.left == 0 {
                self.start_drain(sh);
                return self.drain(true);
            }
            if self.complete() {
                // `output` filled up before every buffered message was answered.
                answered |= self.answer_buffered(sh);
                continue;
            }
            if !may_read {
                break;
            }
            if reads == READS_PER_TURN {
                // Still busy: the next turn comes before the thread waits again.
                self.read_owed = true;
                self.turn_over = true;
                self.deadline = sh.now + sh.io_timeout;
                self.on_deadline = End::Io;
                return Ok(());
            }
            reads += 1;
            self.make_room();
            let buf = &mut self.input[self.filled..];
            let room = buf.len();
            match self.stream.read(buf) {
                Ok(0) => return Err(End::Closed),
                Ok(n) => {
                    if self.filled == 0 {
                        self.guard.busy();
                    }
                    self.filled += n;
                    // A short read emptied the receive queue: wait for the next edge.
                    may_read = n == room;
                    answered |= self.answer_buffered(sh);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(End::Closed),
            }
        }
        // Waiting for the client.
        if self.filled == 0 {
            self.partial_since = None;
            self.guard.idle_at(sh.now);
            self.deadline = sh.now + sh.idle_timeout;
            self.on_deadline = End::Idle;
        } else {
            // The rest of a message must follow within the I/O timeout of its first byte.
            if answered || self.partial_since.is_none() {
                self.partial_since = Some(sh.now);
            }
            self.deadline = self.partial_since.unwrap_or(sh.now) + sh.io_timeout;
            self.on_deadline = End::Io;
        }
        Ok(())
    }

    /// Writes what is left of `output`. `Ok(false)`: the socket's send buffer is full.
    fn flush(&mut self) -> Result<bool, End> {
        while self.written < self.output.len() {
            match self.stream.write(&self.output[self.written..]) {
                Ok(0) => return Err(End::Closed),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(End::Closed),
            }
        }
        self.output.clear();
        self.written = 0;
        Ok(true)
    }

    /// Ends the connection for `why`: counts it (the caller drops the connection, which
    /// closes the socket). The query cap was counted when its drain began.
    pub fn end(&mut self, why: End) {
        match why {
            End::Closed | End::Killed | End::Cap => {}
            End::Idle => counters::TCP_IDLE_TIMEOUTS.inc(),
            End::Io => counters::TCP_IO_TIMEOUTS.inc(),
        }
    }

    /// The query cap is reached and every answer written: sends the end of the stream and
    /// gives the client the I/O timeout to close its side.
    ///
    /// Closing at once would reset the connection whenever the client had sent more than
    /// was read (queries pipelined past the cap): Linux answers a close with unread data
    /// with a reset and drops what it has not sent yet, so the last answers could be
    /// lost. TCP's graceful close (RFC 9293 section 3.6) is the end of the stream, then
    /// the other side's, then the close; the I/O timeout bounds the wait for a client
    /// that never closes (then the reset comes after all).
    fn start_drain(&mut self, sh: &Shared<'_>) {
        counters::TCP_QUERY_CAP.inc();
        let _ = self.stream.shutdown(Shutdown::Write);
        self.draining = true;
        self.filled = 0;
        if self.input.len() < READ_CHUNK {
            self.input.resize(READ_CHUNK, 0);
        }
        self.deadline = sh.now + sh.io_timeout;
        self.on_deadline = End::Cap;
    }

    /// Reads and drops what the client still sends after the query cap, until it closes
    /// (`Err(End::Cap)`), at most [`READS_PER_TURN`] reads a turn.
    fn drain(&mut self, may_read: bool) -> Result<(), End> {
        if !may_read {
            return Ok(());
        }
        for _ in 0..READS_PER_TURN {
            match self.stream.read(&mut self.input) {
                Ok(0) => return Err(End::Cap),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(End::Closed),
            }
        }
        self.read_owed = true;
        self.turn_over = true;
        Ok(())
    }

    /// Answers every complete message buffered (up to the per-connection cap) into
    /// `output`, and moves what is left to the front. Returns whether a message was
    /// answered.
    fn answer_buffered(&mut self, sh: &Shared<'_>) -> bool {
        let mut at = 0;
        while self.left > 0 && self.filled - at >= 2 && self.output.len() < OUTPUT_HIGH {
            let len = u16::from_be_bytes([self.input[at], self.input[at + 1]]) as usize;
            if self.filled - at - 2 < len {
                break;
            }
            super::respond_counted(
                &self.input[at + 2..at + 2 + len],
                self.ip,
                sh.snapshot,
                sh.shield,
                &mut self.out,
                Counts::new(sh.stats, sh.zones, self.shard),
                &mut self.name_buf,
                sh.now,
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
        if at > 0 {
            self.input.copy_within(at..self.filled, 0);
            self.filled -= at;
        }
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
