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

    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    /// A limit as a number: rustix says "unlimited" with None, the C API with RLIM_INFINITY.
    pub fn figure(limit: Option<u64>) -> u64 {
        limit.unwrap_or(u64::MAX)
    }

    pub fn raise_open_files_limit() -> io::Result<u64> {
        let limit = getrlimit(Resource::Nofile);
        if figure(limit.current) >= figure(limit.maximum) {
            return Ok(figure(limit.current));
        }
        let wanted = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        let err = match setrlimit(Resource::Nofile, wanted) {
            Ok(()) => return Ok(figure(wanted.current)),
            Err(err) => io::Error::from(err),
        };
        // macOS reports an unlimited hard limit but refuses a soft one above OPEN_MAX.
        #[cfg(target_os = "macos")]
        {
            const OPEN_MAX: u64 = 10_240;
            let capped = Rlimit {
                current: Some(OPEN_MAX.min(figure(limit.maximum))),
                maximum: limit.maximum,
            };
            if figure(capped.current) > figure(limit.current)
                && setrlimit(Resource::Nofile, capped).is_ok()
            {
                return Ok(figure(capped.current));
            }
        }
        Err(err)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use rustix::process::{Resource, getrlimit};

    #[test]
    fn the_soft_limit_reaches_the_hard_limit() {
        let soft = raise_open_files_limit().unwrap().unwrap();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(unix::figure(limit.current), soft);
        assert!(soft == unix::figure(limit.maximum) || cfg!(target_os = "macos"));
    }
}
