//! What /proc says of a process the tests started: its threads, open files and memory.

use super::{LIMIT, poll};

/// Threads and open files of a process, from /proc.
pub fn threads_and_fds(pid: u32) -> (usize, usize) {
    let count = |what: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{what}"))
            .unwrap()
            .count()
    };
    (count("task"), count("fd"))
}

/// Whether this system shows processes' threads and files in /proc (Linux does).
pub fn has_proc() -> bool {
    std::path::Path::new("/proc/self/task").is_dir()
}

/// The (threads, files) of process `pid` once they are back to `before`, or as they are after
/// [`LIMIT`]: the server lets a connection's threads and socket go once it ends.
pub fn counts_back_to(pid: u32, before: (usize, usize)) -> (usize, usize) {
    poll(LIMIT, || {
        Some(threads_and_fds(pid)).filter(|now| *now == before)
    })
    .unwrap_or_else(|| threads_and_fds(pid))
}

/// A number from process `pid`'s /proc status, in its unit (KiB for memory): `VmRSS`, `VmHWM`.
pub fn status_number(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}
