//! The descriptor limit: raised from the soft to the hard `RLIMIT_NOFILE` at start.
//!
//! systemd and most shells start services with a soft limit of 1,024 whatever the hard
//! limit is; a server facing the internet needs more (see the unit's `LimitNOFILE=`).

/// The soft and hard descriptor limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoFile {
    /// The soft limit (what applies).
    pub soft: u64,
    /// The hard limit (what the soft one may be raised to).
    pub hard: u64,
}

fn get() -> std::io::Result<libc::rlimit> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

/// Infinite limits are reported as this (nothing needs more).
const CAP: u64 = 1 << 20;

// `rlim_t` is u64 on Linux but not on every Unix: keep the cast.
#[allow(clippy::unnecessary_cast)]
fn to_u64(v: libc::rlim_t) -> u64 {
    if v == libc::RLIM_INFINITY {
        CAP
    } else {
        (v as u64).min(CAP)
    }
}

/// The current limits.
pub fn current() -> std::io::Result<NoFile> {
    let r = get()?;
    Ok(NoFile {
        soft: to_u64(r.rlim_cur),
        hard: to_u64(r.rlim_max),
    })
}

/// Raises the soft limit to the hard one (capped at 2^20); returns the limits now in force.
pub fn raise() -> std::io::Result<NoFile> {
    let mut r = get()?;
    let target = if r.rlim_max == libc::RLIM_INFINITY {
        CAP as libc::rlim_t
    } else {
        r.rlim_max
    };
    if r.rlim_cur != libc::RLIM_INFINITY && r.rlim_cur < target {
        r.rlim_cur = target;
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    current()
}
