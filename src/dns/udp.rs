//! UDP: worker threads that receive, answer and send, one packet at a time.
//!
//! Each worker is a plain OS thread blocked in `recv_from` on a clone of the socket: no
//! task per query, no channel, no lock. The snapshot is read through an `arc_swap::Cache`,
//! which makes the per-query load a pointer comparison until a reload happens.

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::Cache;

use super::respond_udp;
use super::shield::Shield;
use super::stats::DnsStats;
use crate::zone::SnapshotCell;

/// How often an idle worker wakes up to check for shutdown.
pub const SHUTDOWN_POLL: Duration = Duration::from_millis(100);
/// Largest datagram accepted.
const RECV_BUFFER: usize = 65_535;

/// Starts `threads` workers on `socket`. They stop within [`SHUTDOWN_POLL`] of `stop`
/// being set. Worker `i` counts into statistics shard `first_shard + i`, so that no two
/// workers write the same cache line. `shield` answers cookies and limits response rates.
pub fn spawn_workers(
    socket: &UdpSocket,
    threads: usize,
    first_shard: usize,
    cell: Arc<SnapshotCell>,
    stats: Arc<DnsStats>,
    shield: Arc<Shield>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(SHUTDOWN_POLL))?;
    let local = socket.local_addr()?;
    (0..threads.max(1))
        .map(|i| {
            let socket = socket.try_clone()?;
            let cell = cell.clone();
            let stats = stats.clone();
            let shield = shield.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("udp-{i}-{local}"))
                .spawn(move || worker(socket, &cell, &stats, &shield, first_shard + i, &stop))
        })
        .collect()
}

fn worker(
    socket: UdpSocket,
    cell: &SnapshotCell,
    stats: &DnsStats,
    shield: &Shield,
    shard: usize,
    stop: &AtomicBool,
) {
    let mut cache = Cache::new(cell);
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut out = Vec::with_capacity(super::wire::MAX_UDP_PAYLOAD as usize);
    let mut error_logged = false;
    while !stop.load(Ordering::Relaxed) {
        let (len, src) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                match e.kind() {
                    // Timeouts let us look at `stop`; refused is an ICMP error for an
                    // earlier reply to a client that has gone away.
                    ErrorKind::WouldBlock
                    | ErrorKind::TimedOut
                    | ErrorKind::Interrupted
                    | ErrorKind::ConnectionRefused => {}
                    _ => {
                        if !error_logged {
                            tracing::warn!(error = %e, "UDP receive failed");
                            error_logged = true;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                continue;
            }
        };
        let received = Instant::now();
        let snapshot = cache.load();
        respond_udp(
            &buf[..len],
            src.ip(),
            snapshot,
            shield,
            &mut out,
            stats,
            shard,
            received,
        );
        if !out.is_empty() {
            // A failed send (client gone, buffer full) loses one answer; the client retries.
            let _ = socket.send_to(&out, src);
        }
    }
}
