//! Batched UDP I/O: `recvmmsg(2)` and `sendmmsg(2)`, one system call per batch.
//!
//! A [`Batch`] owns [`BATCH`] receive buffers, their source addresses and one response
//! buffer each, allocated once per worker thread; the message headers point into them and
//! are reused, so a batch costs no allocation. `recv` blocks until at least one datagram
//! is there (`MSG_WAITFORONE`) and then takes whatever else is queued, up to [`BATCH`];
//! `send` answers every slot whose response is not empty, to the address it came from.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

/// Datagrams handled per system call at most. 32 covers the queue a busy worker finds
/// between two calls; more only adds idle buffers.
pub const BATCH: usize = 32;
/// Largest datagram accepted (the receive buffers are this large, but only the pages a
/// datagram touches become resident).
const RECV_BUFFER: usize = 65_535;
/// Capacity of each response buffer: the largest UDP response Roundel sends, plus room
/// for the one record the encoder writes before it sees that it does not fit.
const SEND_BUFFER: usize = 4096;

/// Receive and send state of one worker thread. Holds raw pointers into its own buffers,
/// so it stays on the thread that made it (not `Send`).
pub struct Batch {
    bufs: Vec<Box<[u8]>>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    outs: Vec<Vec<u8>>,
    send_iovs: Vec<libc::iovec>,
    send_hdrs: Vec<libc::mmsghdr>,
    len: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// Allocates the buffers of one worker.
    pub fn new() -> Self {
        let mut bufs: Vec<Box<[u8]>> = (0..BATCH)
            .map(|_| vec![0u8; RECV_BUFFER].into_boxed_slice())
            .collect();
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all
        // zero bytes is a valid value.
        let mut addrs: Vec<libc::sockaddr_storage> =
            (0..BATCH).map(|_| unsafe { zeroed() }).collect();
        let mut iovs: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let hdrs = (0..BATCH)
            .map(|i| {
                let mut h: libc::mmsghdr = unsafe { zeroed() };
                h.msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_iov = &mut iovs[i];
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        Self {
            bufs,
            addrs,
            iovs,
            hdrs,
            outs: (0..BATCH)
                .map(|_| Vec::with_capacity(SEND_BUFFER))
                .collect(),
            send_iovs: (0..BATCH)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            send_hdrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            len: 0,
        }
    }

    /// Receives up to [`BATCH`] datagrams on `socket`, waiting (up to the socket's read
    /// timeout) for the first. Returns how many arrived.
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        // Only the slots of the last batch were written (by the kernel and by the
        // answers): a lightly loaded server gets one datagram per call and should not
        // reset all BATCH slots for it.
        let used = std::mem::take(&mut self.len);
        for out in &mut self.outs[..used] {
            out.clear();
        }
        for (h, iov) in self.hdrs[..used].iter_mut().zip(&self.iovs) {
            // The kernel overwrites these with the source's length and the datagram's
            // length and flags.
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
            debug_assert_eq!(iov.iov_len, RECV_BUFFER);
        }
        let fd: RawFd = socket.as_raw_fd();
        // SAFETY: every header points at a live buffer and address of `self`, with their
        // true lengths; the kernel writes at most that much.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.len = n as usize;
        Ok(self.len)
    }

    /// Datagram `i` of the last [`Batch::recv`]: its bytes, its source (`None` for an
    /// address family other than IPv4/IPv6, which a UDP/IP socket never reports), and the
    /// response buffer to fill (empty; leave it empty to send nothing).
    pub fn slot(&mut self, i: usize) -> (&[u8], Option<SocketAddr>, &mut Vec<u8>) {
        let h = &self.hdrs[i];
        // A datagram longer than the buffer is cut (MSG_TRUNC); at 64 KiB none is.
        let len = (h.msg_len as usize).min(RECV_BUFFER);
        let src = socket_addr(&self.addrs[i], h.msg_hdr.msg_namelen);
        (&self.bufs[i][..len], src, &mut self.outs[i])
    }

    /// Sends the non-empty responses of the last batch, each to its request's source.
    /// A datagram the kernel refuses (client gone, no route) is skipped: the client
    /// retries, as with any lost UDP answer. Returns how many responses there were.
    pub fn send(&mut self, socket: &impl AsRawFd) -> usize {
        let mut n = 0;
        for i in 0..self.len {
            let out = &mut self.outs[i];
            if out.is_empty() {
                continue;
            }
            self.send_iovs[n] = libc::iovec {
                iov_base: out.as_mut_ptr().cast(),
                iov_len: out.len(),
            };
            let h = &mut self.send_hdrs[n];
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = self.hdrs[i].msg_hdr.msg_namelen;
            h.msg_hdr.msg_iov = &mut self.send_iovs[n];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            n += 1;
        }
        let fd = socket.as_raw_fd();
        let mut at = 0;
        while at < n {
            // SAFETY: headers `at..n` point at live responses and addresses of `self`.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.send_hdrs[at..].as_mut_ptr(),
                    (n - at) as libc::c_uint,
                    0,
                )
            };
            if r > 0 {
                at += r as usize;
            } else if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                // The datagram at `at` failed: skip it, send the rest.
                at += 1;
            }
        }
        n
    }
}

/// The socket address in `sa` (of length `len`), for IPv4 and IPv6.
fn socket_addr(sa: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match sa.ss_family as libc::c_int {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says it is a sockaddr_in, and storage is large and
            // aligned enough for any socket address.
            let a = unsafe { &*(sa as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(sa as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::new(IpAddr::V6(ip), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    #[test]
    fn receives_a_batch_and_answers_each_source() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let addr = server.local_addr().unwrap();
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, c) in clients.iter().enumerate() {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.send_to(&[i as u8; 3], addr).unwrap();
        }
        let mut batch = Batch::new();
        let mut got = 0;
        // Loopback delivers in order, but the first call may return before all three
        // are queued; bounded by the count and the read timeout.
        while got < 3 {
            let n = batch.recv(&server).unwrap();
            assert!(n >= 1);
            for i in 0..n {
                let (msg, src, out) = batch.slot(i);
                let src = src.unwrap();
                let k = clients
                    .iter()
                    .position(|c| c.local_addr().unwrap() == src)
                    .unwrap();
                assert_eq!(msg, &[k as u8; 3]);
                out.extend_from_slice(&[k as u8 + 10; 2]);
            }
            assert_eq!(batch.send(&server), n);
            got += n;
        }
        for (k, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 16];
            let (len, from) = c.recv_from(&mut buf).unwrap();
            assert_eq!(from, addr);
            assert_eq!(&buf[..len], &[k as u8 + 10; 2]);
        }
    }
}
