//! UDP: worker threads that receive, answer and send batches of datagrams.
//!
//! Each worker is a plain OS thread with its own socket: the listening socket is bound
//! with `SO_REUSEPORT`, and every further worker binds one more socket to the same address,
//! so the kernel spreads flows over the workers' sockets and no two threads contend on one
//! socket's queue or lock. A worker takes up to [`mmsg::BATCH`] datagrams per `recvmmsg`
//! and answers them with one `sendmmsg`; what a batch can pay once (the clock, the
//! snapshot load, the latency and transport counters) it pays once. No task per query, no
//! channel, no lock. The snapshot is read through an `arc_swap::Cache`, which makes the
//! per-batch load a pointer comparison until a reload happens.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::Cache;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::mmsg::{self, Batch};
use super::respond_counted;
use super::shield::Shield;
use super::stats::{Counts, DnsStats, Transport};
use crate::limits::UdpReceiveBuffer;
use crate::shutdown::Stopping;
use crate::zone::SnapshotCell;
use crate::zone::name::MAX_NAME_LEN;

/// How often an idle worker wakes up to check for shutdown.
pub const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// Starts `threads` workers on `socket`'s address. They stop within [`SHUTDOWN_POLL`] of
/// the server stopping. Worker `i` counts into statistics shard `first_shard + i`, so that no
/// two workers write the same cache line. `shield` answers cookies and limits response
/// rates.
///
/// When `socket` has `SO_REUSEPORT` (as [`crate::server::Listeners::bind`] sets it), the
/// first worker reads `socket` and each further worker binds its own socket to the same
/// address; otherwise all workers share clones of `socket`. Each socket asks for the
/// receive buffer `receive_buffer` says (`[limits] udp_receive_buffer`,
/// [`super::udp_buffers`]); the size granted is logged once per address, with a warning
/// when the kernel gave less than a configured size. Every socket is registered in
/// `stats` for its drop count.
#[allow(clippy::too_many_arguments)]
pub fn spawn_workers(
    socket: &UdpSocket,
    threads: usize,
    first_shard: usize,
    receive_buffer: UdpReceiveBuffer,
    cell: Arc<SnapshotCell>,
    stats: Arc<DnsStats>,
    shield: Arc<Shield>,
    stop: Stopping,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(SHUTDOWN_POLL))?;
    let local = socket.local_addr()?;
    let reuse_port = SockRef::from(socket).reuse_port().unwrap_or(false);
    (0..threads.max(1))
        .map(|i| {
            let socket = if i == 0 || !reuse_port {
                socket.try_clone()?
            } else {
                sibling(local)?
            };
            if let UdpReceiveBuffer::Bytes { bytes, configured } = receive_buffer {
                size_receive_buffer(&socket, bytes, configured, local, i == 0);
            }
            // Shared with the drop counter rather than duplicated: no descriptor more.
            let socket = Arc::new(socket);
            stats.udp_sockets.watch(socket.clone());
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

/// Makes a UDP socket ignore path MTU information (`IP_PMTUDISC_OMIT`,
/// `IPV6_PMTUDISC_OMIT`, Linux 3.15+), as gdnsd, NSD and Knot do: with the default
/// the kernel believes ICMP "fragmentation needed" / "packet too big" messages, which
/// anyone can forge to make a server fragment its answers to a victim resolver, the first
/// step of fragment-based cache poisoning (see RFC 9715 section 7). With OMIT, answers
/// go out in one packet up to the interface MTU, and Roundel's UDP answers are at most
/// [`super::wire::MAX_UDP_PAYLOAD`] bytes (1232, RFC 9715), which fits any IPv6 path and
/// every usual IPv4 one. The kernel also skips the per-destination MTU bookkeeping.
pub fn ignore_path_mtu(socket: &impl std::os::fd::AsRawFd, ipv6: bool) -> std::io::Result<()> {
    let (level, name, value) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_OMIT,
        )
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_OMIT,
        )
    };
    // SAFETY: setsockopt with a valid descriptor and a pointer to a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets the receive buffer of a worker's socket. Failing to is not fatal (the socket
/// keeps the system default). The outcome is logged for the first worker of `local` only:
/// the size granted, and a warning when the kernel gave less than a `configured` size (the
/// default's cap is only logged: an unprivileged process under a stock `rmem_max` gets
/// that at every start).
fn size_receive_buffer(
    socket: &UdpSocket,
    bytes: u32,
    configured: bool,
    local: SocketAddr,
    first: bool,
) {
    let granted = super::udp_buffers::set_receive_buffer(socket, bytes);
    if !first {
        return;
    }
    match granted {
        // The kernel reports twice what it reserves for data (its bookkeeping included).
        Ok(got) if got / 2 < bytes && configured => tracing::warn!(
            addr = %local,
            requested = bytes,
            granted = got / 2,
            "udp_receive_buffer capped by net.core.rmem_max (raise it, or run with CAP_NET_ADMIN)"
        ),
        Ok(got) => {
            tracing::info!(addr = %local, requested = bytes, granted = got / 2, "UDP receive buffer")
        }
        Err(e) => tracing::warn!(
            addr = %local,
            error = %e,
            "cannot set the UDP receive buffer; the system default applies"
        ),
    }
}

/// One more socket in the `SO_REUSEPORT` group of `local`.
fn sibling(local: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
    if local.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_port(true)?;
    ignore_path_mtu(&s, local.is_ipv6())?;
    s.bind(&local.into())?;
    s.set_read_timeout(Some(SHUTDOWN_POLL))?;
    Ok(s.into())
}

fn worker(
    socket: Arc<UdpSocket>,
    cell: &SnapshotCell,
    stats: &DnsStats,
    shield: &Shield,
    shard: usize,
    stop: &Stopping,
) {
    crate::node::set_rotation_shard(shard);
    let mut cache = Cache::new(cell);
    let mut zones = stats.zone_cache();
    let mut name_buf = [0; MAX_NAME_LEN];
    let mut batch = Batch::new();
    let mut error_logged = false;
    while !stop.is_set() {
        let n = match batch.recv(&socket) {
            Ok(n) => n,
            Err(e) => {
                match e.kind() {
                    // Timeouts let us look at `stop`; refused is an ICMP error for an
                    // earlier reply to a client that has gone away.
                    ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                        // Idle: let go of a snapshot a reload has replaced, so that the
                        // reclaimer can free it (crate::reclaim).
                        cache.load();
                        zones.load();
                    }
                    ErrorKind::Interrupted | ErrorKind::ConnectionRefused => {}
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
        // One clock read and one snapshot load for the whole batch: every datagram in it
        // was already queued when recvmmsg returned.
        let received = Instant::now();
        let snapshot = cache.load();
        // After the snapshot: a reload stores the zones' counters before it publishes.
        let counts = Counts::new(stats, zones.load(), shard);
        for i in 0..n.min(mmsg::BATCH) {
            let (msg, src, out) = batch.slot(i);
            if let Some(src) = src {
                respond_counted(
                    msg,
                    src.ip(),
                    snapshot,
                    shield,
                    out,
                    counts,
                    &mut name_buf,
                    received,
                    Transport::Udp,
                );
            }
        }
        let answered = batch.send(&socket);
        stats.record_batch(shard, Transport::Udp, answered as u64, received.elapsed());
    }
}

/// The path MTU discovery mode of a UDP socket (`IP_MTU_DISCOVER` / `IPV6_MTU_DISCOVER`),
/// for tests.
#[cfg(test)]
pub(crate) fn path_mtu_mode(s: &impl std::os::fd::AsRawFd, ipv6: bool) -> libc::c_int {
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
    };
    let mut v: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into a c_int of the given size.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each worker's own socket ignores path MTU information (the listening sockets:
    /// `server`'s tests).
    #[test]
    fn worker_sockets_ignore_path_mtu() {
        for (first, ipv6) in [("127.0.0.1:0", false), ("[::1]:0", true)] {
            let first: SocketAddr = first.parse().unwrap();
            let s = Socket::new(Domain::for_address(first), Type::DGRAM, None).unwrap();
            s.set_reuse_port(true).unwrap();
            s.bind(&first.into()).unwrap();
            let local = s.local_addr().unwrap().as_socket().unwrap();
            let worker = sibling(local).unwrap();
            assert_eq!(
                path_mtu_mode(&worker, ipv6),
                if ipv6 {
                    libc::IPV6_PMTUDISC_OMIT
                } else {
                    libc::IP_PMTUDISC_OMIT
                }
            );
        }
    }
}
