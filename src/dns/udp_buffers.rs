//! The UDP workers' socket receive buffers: their size (`[limits] udp_receive_buffer`) and
//! the kernel's count of the datagrams it dropped because a buffer was full.
//!
//! A query that arrives while its socket's receive buffer is full is dropped by the kernel
//! before Roundel sees it. That happens when a worker falls behind for longer than the
//! buffer lasts: with the usual system default (212,992 bytes, about 250 small datagrams)
//! that is 25 ms at 10,000 queries a second, shorter than the time a busy or
//! virtualised machine can take a CPU away. No counter of Roundel's own can see such a
//! query; Linux counts them per socket (`sk_drops`, read with `SO_MEMINFO`, Linux 4.14+).
//! The workers' sockets are registered here as they start (shared with the workers, not
//! duplicated) and read when the metrics are scraped: nothing on the answer path.
//!
//! The size is asked for with `SO_RCVBUFFORCE`, which only a process with `CAP_NET_ADMIN`
//! may use past `net.core.rmem_max`, else with `SO_RCVBUF`, capped there. By default
//! Roundel asks for 1 MiB ([`crate::limits::DEFAULT_UDP_RECEIVE_BUFFER`]), as NSD 4.6 does;
//! gdnsd and Knot keep the system default unless configured. Not more: a deep queue also
//! holds queries whose resolver has already given up and asked another server.

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

/// The UDP workers' sockets, for their drop counters.
#[derive(Debug, Default)]
pub struct SocketDrops {
    sockets: Mutex<Vec<Arc<UdpSocket>>>,
}

impl SocketDrops {
    /// Registers a worker's socket, kept until [`SocketDrops::forget`].
    pub fn watch(&self, socket: Arc<UdpSocket>) {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(socket);
    }

    /// Datagrams the kernel dropped at the registered sockets since they were opened.
    /// Sockets whose counter cannot be read (a kernel before 4.14) count nothing.
    pub fn total(&self) -> u64 {
        let sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        // Workers of one address share the listening socket: count each socket once.
        let mut seen = Vec::with_capacity(sockets.len());
        sockets
            .iter()
            .filter(|s| {
                let id = socket_id(s);
                let new = !seen.contains(&id);
                seen.push(id);
                new
            })
            .filter_map(|s| drops(s).ok())
            .map(u64::from)
            .sum()
    }

    /// Lets go of the sockets, so that they close (and free their addresses) once the
    /// workers have stopped.
    pub fn forget(&self) {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Identifies the socket behind a descriptor (duplicates share it): its inode.
fn socket_id(s: &UdpSocket) -> u64 {
    // SAFETY: fstat into a zeroed stat struct of the right type.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(s.as_raw_fd(), &mut st) } == 0 {
        st.st_ino
    } else {
        u64::MAX - s.as_raw_fd() as u64
    }
}

/// The kernel's count of datagrams dropped at `socket` (`SO_MEMINFO`, `SK_MEMINFO_DROPS`).
pub fn drops(socket: &impl AsRawFd) -> io::Result<u32> {
    // The kernel fills as many of its counters as the buffer holds (nine since 4.14).
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: getsockopt into a u32 array of the given length.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if (len as usize) <= libc::SK_MEMINFO_DROPS as usize * 4 {
        return Err(io::Error::other("SO_MEMINFO without a drop count"));
    }
    Ok(info[libc::SK_MEMINFO_DROPS as usize])
}

/// Asks for a receive buffer of `bytes` on `socket` and returns the size the kernel gave
/// (as `SO_RCVBUF` reads it: twice the request, the kernel's bookkeeping included).
///
/// `SO_RCVBUFFORCE` first, which may exceed `net.core.rmem_max` but needs
/// `CAP_NET_ADMIN`; without it `SO_RCVBUF`, which the kernel caps at `rmem_max`.
pub fn set_receive_buffer(socket: &impl AsRawFd, bytes: u32) -> io::Result<u32> {
    let fd = socket.as_raw_fd();
    let value = bytes as libc::c_int;
    let set = |name| {
        // SAFETY: setsockopt with a valid descriptor and a pointer to a c_int.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(libc::SO_RCVBUFFORCE) != 0 && set(libc::SO_RCVBUF) != 0 {
        return Err(io::Error::last_os_error());
    }
    receive_buffer(socket)
}

/// The receive buffer size of `socket` (`SO_RCVBUF`).
pub fn receive_buffer(socket: &impl AsRawFd) -> io::Result<u32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into a c_int of the given size.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v.max(0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datagrams sent to a socket nobody reads, past its smallest buffer, are counted as
    /// drops, once per socket however many descriptors of it are registered (workers
    /// without `SO_REUSEPORT` share duplicates of one socket).
    #[test]
    fn drops_of_a_full_socket_are_counted() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // The kernel's minimum buffer: a few datagrams fill it.
        let value: libc::c_int = 1;
        // SAFETY: setsockopt with a pointer to a c_int.
        unsafe {
            libc::setsockopt(
                rx.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let registry = SocketDrops::default();
        registry.watch(Arc::new(rx.try_clone().unwrap()));
        registry.watch(Arc::new(rx.try_clone().unwrap()));
        assert_eq!(registry.total(), 0);
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        for _ in 0..200 {
            tx.send_to(&[0u8; 512], to).unwrap();
        }
        let dropped = drops(&rx).unwrap();
        assert!(dropped > 100, "{dropped} of 200 dropped");
        assert_eq!(registry.total(), u64::from(dropped));
        registry.forget();
        assert_eq!(registry.total(), 0);
    }

    /// A requested buffer is granted, past `net.core.rmem_max` for root (as the tests run
    /// here), and read back doubled as the kernel reports it.
    #[test]
    fn receive_buffer_is_set() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = receive_buffer(&s).unwrap();
        let want: u32 = 3 << 20;
        let rmem_max: u32 = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let granted = if root { want } else { want.min(rmem_max) };
        let got = set_receive_buffer(&s, want).unwrap();
        assert_eq!(got, 2 * granted, "before {before}");
        assert_eq!(receive_buffer(&s).unwrap(), got);
    }
}
