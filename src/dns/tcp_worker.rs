//! The DNS-over-TCP threads: each serves its share of the connections with its own epoll
//! loop (mio), outside tokio.
//!
//! Why not a tokio task per connection: a profile of `dnsperf -m tcp` showed the task's
//! wake-up, its timers (a `Sleep` re-armed per read) and the hand-over between the
//! runtime's worker threads costing more than answering. A thread that owns its
//! connections wakes once for every socket that became ready, reads the clock once per
//! wake-up, and checks deadlines only when the earliest one is due.
//!
//! The tokio accept loop ([`super::tcp::accept_loop`]) admits each connection and hands it
//! to a thread (round robin) through a queue and the thread's waker. After an eviction, and
//! when the server stops, it wakes every thread to close the connections told to close
//! ([`crate::limits::slots::Slot::killed`]).
//!
//! Deadlines are checked coarsely: the thread keeps a lower bound of its connections'
//! deadlines and, once it has passed (plus [`TIMER_SLACK`]), closes every connection past
//! its deadline and takes the next lower bound. A timeout fires at most `TIMER_SLACK` (and
//! the epoll timeout's millisecond rounding) late, and a thread with thousands of
//! connections looks at them at most once per `TIMER_SLACK`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

use super::shield::Shield;
use super::stats::DnsStats;
use super::tcp_conn::{Conn, End, Shared};
use crate::limits::slots::SlotGuard;
use crate::zone::SnapshotCell;

/// How late a deadline may be checked, at most: the price of not re-arming a timer.
pub const TIMER_SLACK: Duration = Duration::from_millis(10);

/// Socket events a thread takes from one epoll wait.
const EVENTS: usize = 256;

/// The waker's token; connections are numbered from 0.
const WAKE: Token = Token(usize::MAX);

/// A connection admitted, on its way to a thread.
struct NewConn {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    guard: SlotGuard,
}

/// What the accept loop shares with one thread.
struct Mailbox {
    new: Mutex<Vec<NewConn>>,
    /// Look for connections told to close.
    check: AtomicBool,
    stop: AtomicBool,
    waker: Waker,
}

/// The settings every connection of a server has.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The zones.
    pub cell: Arc<SnapshotCell>,
    /// Statistics.
    pub stats: Arc<DnsStats>,
    /// Cookies.
    pub shield: Arc<Shield>,
    /// Closes a connection waiting for its next query.
    pub idle_timeout: Duration,
    /// Bounds a message being read and a response being written.
    pub io_timeout: Duration,
    /// Queries per connection.
    pub queries_per_connection: u32,
}

/// The TCP threads of one server. Dropping this stops them.
pub struct Workers {
    mailboxes: Vec<Arc<Mailbox>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("threads", &self.mailboxes.len())
            .finish()
    }
}

impl Workers {
    /// Starts `threads` threads (at least one) serving connections with `settings`.
    pub fn start(threads: usize, settings: &Settings) -> std::io::Result<Self> {
        let mut mailboxes = Vec::new();
        for i in 0..threads.max(1) {
            let poll = Poll::new()?;
            let mailbox = Arc::new(Mailbox {
                new: Mutex::new(Vec::new()),
                check: AtomicBool::new(false),
                stop: AtomicBool::new(false),
                waker: Waker::new(poll.registry(), WAKE)?,
            });
            let m = mailbox.clone();
            let s = settings.clone();
            std::thread::Builder::new()
                .name(format!("tcp-{i}"))
                .spawn(move || Thread::new(poll, m, s).run())?;
            mailboxes.push(mailbox);
        }
        Ok(Self {
            mailboxes,
            next: AtomicUsize::new(0),
        })
    }

    /// Gives an admitted connection to a thread.
    pub fn hand(&self, stream: std::net::TcpStream, peer: SocketAddr, guard: SlotGuard) {
        let i = self.next.fetch_add(1, Relaxed) % self.mailboxes.len();
        let m = &self.mailboxes[i];
        if m.stop.load(Relaxed) {
            // Its thread has ended: dropping the stream and the guard closes the
            // connection and frees its slot.
            return;
        }
        m.new
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(NewConn {
                stream,
                peer,
                guard,
            });
        let _ = m.waker.wake();
    }

    /// Makes every thread close its connections told to close (evicted).
    pub fn check_kills(&self) {
        for m in &self.mailboxes {
            m.check.store(true, Relaxed);
            let _ = m.waker.wake();
        }
    }

    /// Closes every connection and ends the threads.
    pub fn stop(&self) {
        for m in &self.mailboxes {
            m.stop.store(true, Relaxed);
            let _ = m.waker.wake();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One thread's state.
struct Thread {
    poll: Poll,
    mailbox: Arc<Mailbox>,
    settings: Settings,
    /// Connections by token; `free` lists the empty places.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// No connection's deadline is before this (minus the slack); `None`: no connection.
    sweep_at: Option<Instant>,
    /// Connections that used up their turn with data left to read.
    again: Vec<usize>,
}

impl Thread {
    fn new(poll: Poll, mailbox: Arc<Mailbox>, settings: Settings) -> Self {
        Self {
            poll,
            mailbox,
            settings,
            conns: Vec::new(),
            free: Vec::new(),
            sweep_at: None,
            again: Vec::new(),
        }
    }

    fn run(mut self) {
        let settings = self.settings.clone();
        let mut events = Events::with_capacity(EVENTS);
        let mut now = Instant::now();
        loop {
            let timeout = if self.again.is_empty() {
                self.sweep_at.map(|t| t.saturating_duration_since(now))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "DNS-over-TCP thread: epoll failed; its connections are closed");
                // New connections are not handed to it any more (closed instead).
                self.mailbox.stop.store(true, Relaxed);
                self.mailbox
                    .new
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                return;
            }
            now = Instant::now();
            // Loaded per wake-up, not cached: an idle thread must not keep a replaced
            // snapshot (a whole zone set) alive.
            let snapshot = settings.cell.load();
            let zones = settings.stats.zones_now();
            let sh = Shared {
                snapshot: &snapshot,
                shield: &settings.shield,
                stats: &settings.stats,
                zones: &zones,
                now,
                idle_timeout: settings.idle_timeout,
                io_timeout: settings.io_timeout,
            };
            for ev in &events {
                if ev.token() == WAKE {
                    if self.mailbox.stop.load(Relaxed) {
                        // Dropping the connections closes them and frees their slots.
                        return;
                    }
                    self.take_new(&sh);
                    if self.mailbox.check.swap(false, Relaxed) {
                        self.close_killed();
                    }
                    continue;
                }
                let i = ev.token().0;
                let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                self.turn(i, readable, &sh);
            }
            // Another turn for the connections that had more to read, after everyone else
            // (those that still have more are queued behind, for the next round).
            let waiting = self.again.len();
            for k in 0..waiting {
                self.turn(self.again[k], false, &sh);
            }
            self.again.drain(..waiting);
            if self.sweep_at.is_some_and(|t| t <= now) {
                self.sweep(now);
            }
        }
    }

    /// Lets connection `i` read, answer and write.
    #[inline]
    fn turn(&mut self, i: usize, readable: bool, sh: &Shared<'_>) {
        let Some(Some(c)) = self.conns.get_mut(i) else {
            return;
        };
        match c.ready(readable, sh) {
            Ok(()) => {
                if c.wants_turn() {
                    self.again.push(i);
                }
                self.note_deadline(i);
            }
            Err(why) => self.close(i, why),
        }
    }

    /// Registers the connections the accept loop handed over.
    fn take_new(&mut self, sh: &Shared<'_>) {
        let new = std::mem::take(&mut *self.mailbox.new.lock().unwrap_or_else(|e| e.into_inner()));
        for n in new {
            let mut stream = mio::net::TcpStream::from_std(n.stream);
            let i = match self.free.pop() {
                Some(i) => i,
                None => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
            };
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                // The stream and its slot are dropped: the client sees the end.
                self.free.push(i);
                continue;
            }
            let c = Conn::new(
                stream,
                n.peer,
                n.guard,
                self.settings.queries_per_connection,
                sh.now,
                sh.idle_timeout,
            );
            self.conns[i] = Some(c);
            self.note_deadline(i);
        }
    }

    /// Keeps `sweep_at` at or before connection `i`'s deadline.
    #[inline]
    fn note_deadline(&mut self, i: usize) {
        if let Some(Some(c)) = self.conns.get(i) {
            let due = c.deadline().0 + TIMER_SLACK;
            if self.sweep_at.is_none_or(|t| due < t) {
                self.sweep_at = Some(due);
            }
        }
    }

    fn close(&mut self, i: usize, why: End) {
        if let Some(mut c) = self.conns.get_mut(i).and_then(Option::take) {
            c.end(why);
            self.free.push(i);
        }
    }

    fn close_killed(&mut self) {
        for i in 0..self.conns.len() {
            if self.conns[i]
                .as_ref()
                .is_some_and(|c| c.guard.slot().killed())
            {
                self.close(i, End::Killed);
            }
        }
    }

    /// Closes the connections past their deadline (or told to close), and finds the next
    /// deadline.
    fn sweep(&mut self, now: Instant) {
        let mut next: Option<Instant> = None;
        for i in 0..self.conns.len() {
            let Some(c) = &self.conns[i] else { continue };
            let (deadline, why) = c.deadline();
            if c.guard.slot().killed() {
                self.close(i, End::Killed);
            } else if deadline <= now {
                self.close(i, why);
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        self.sweep_at = next.map(|d| d + TIMER_SLACK);
    }
}
