//! Process resource limits: the number of open files a server may hold (one per client).

use std::io;

/// Raises the soft limit on open files (RLIMIT_NOFILE) to the hard limit, so a server can hold
/// as many clients as the system lets this process. Returns the soft limit now in force; `None`
/// where the OS has no such limit (Windows).
pub fn raise_open_files_limit() -> io::Result<Option<u64>> {
    #[cfg(unix)]
    return unix::raise_open_files_limit().map(Some);
    #[cfg(not(unix))]
    return Ok(None);
}

#[cfg(unix)]
mod unix {
    use std::io;

    // rlim_t is u64 on the 64-bit targets and narrower on some 32-bit ones.
    #[allow(clippy::unnecessary_cast)]
    pub fn raise_open_files_limit() -> io::Result<u64> {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into memory we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur >= limit.rlim_max {
            return Ok(limit.rlim_cur as u64);
        }
        let wanted = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit from memory we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
            return Ok(wanted.rlim_cur as u64);
        }
        let err = io::Error::last_os_error();
        // macOS reports an unlimited hard limit but refuses a soft one above OPEN_MAX.
        #[cfg(target_os = "macos")]
        {
            const OPEN_MAX: libc::rlim_t = 10_240;
            let capped = libc::rlimit {
                rlim_cur: OPEN_MAX.min(limit.rlim_max),
                rlim_max: limit.rlim_max,
            };
            // SAFETY: as above.
            if capped.rlim_cur > limit.rlim_cur
                && unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) } == 0
            {
                return Ok(capped.rlim_cur as u64);
            }
        }
        Err(err)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unnecessary_cast)]
    fn the_soft_limit_reaches_the_hard_limit() {
        let soft = raise_open_files_limit().unwrap().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into memory we own.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(limit.rlim_cur as u64, soft);
        assert!(soft == limit.rlim_max as u64 || cfg!(target_os = "macos"));
    }
}
