//! Linux: which processes hold each socket, from the links in every `/proc/PID/fd`.
//!
//! One readlink per open file in the system is the cost of `-p`, and the kernel's own floor: a
//! lookup in `/proc/PID/fd` costs as much whether the descriptor is open or not. Two savings:
//! - `/proc/PID/fd` is not listed when it need not be. Since Linux 6.2, `stat` of that directory
//!   gives the number of open descriptors; the kernel hands out the lowest free one, so a table
//!   usually holds exactly `0..open`. Those are read directly, and only when some are missing
//!   (a gap) is the rest of the directory listed, from the first descriptor not yet read. A
//!   listing costs about a third of a readlink per entry; a missed guess costs a whole one, so
//!   guessing stops after a few misses.
//! - The walk is shared out among one thread per core: first by process, then, for the few
//!   processes with very large tables (a busy server holding most of the system's sockets), by
//!   chunks of their descriptors.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rustix::fd::OwnedFd;
use rustix::fs::{CWD, Dir, Mode, OFlags};

use super::Owners;

/// A process with more open files than this has its fd table walked by every thread together, in
/// chunks of this many: one busy server can hold most of the system's sockets.
const SHARED_TABLE_FDS: usize = 1024;

/// (socket inode, pid) pairs.
type Found = Vec<(u64, u32)>;

/// Finds the processes that hold each socket, by reading every `/proc/PID/fd` link.
pub fn owners() -> Owners {
    owners_sharing_above(SHARED_TABLE_FDS)
}

/// [`owners`], sharing out fd tables larger than `shared_above` by chunks of that many.
fn owners_sharing_above(shared_above: usize) -> Owners {
    let mut owners = Owners::default();
    let Some(pids) = list_pids() else {
        owners.hidden = true;
        return owners;
    };
    let counts_open = kernel_counts_open_fds();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let next = AtomicUsize::new(0);
    let large = Mutex::new(Vec::new());
    let walk = || {
        let mut found = Found::new();
        let mut hidden = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(&pid) = pids.get(index) else {
                return (found, hidden);
            };
            match FdTable::open(pid, counts_open) {
                Ok(table) if table.candidates() > shared_above => {
                    if let Ok(mut large) = large.lock() {
                        large.push(table);
                    }
                }
                Ok(table) => table.walk_alone(&mut found),
                Err(err) if err == rustix::io::Errno::ACCESS || err == rustix::io::Errno::PERM => {
                    hidden.push(pid);
                }
                // The process ended while we looked: nothing to report.
                Err(_) => {}
            }
        }
    };
    // Each thread's (inode, pid) pairs and the PIDs it could not look into.
    let mut results: Vec<(Found, Vec<u32>)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(walk)).collect();
        let mut results = vec![walk()];
        results.extend(helpers.into_iter().filter_map(|h| h.join().ok()));
        results
    });
    let mut large = large.into_inner().unwrap_or_default();
    if !large.is_empty() {
        let found = walk_large_tables(&mut large, threads, shared_above);
        results.extend(found.into_iter().map(|found| (found, Vec::new())));
    }
    let sockets = results.iter().map(|(found, _)| found.len()).sum();
    owners.by_inode.reserve(sockets);
    for (found, hidden) in results {
        owners.hidden |= !hidden.is_empty();
        owners.hidden_pids.extend(hidden);
        owners.by_inode.extend(found);
    }
    // Sorted, a socket's holders are found by a binary search, in PID order, and repeats (a
    // socket held twice by one process) sit side by side.
    owners.by_inode.sort_unstable();
    owners.by_inode.dedup();
    owners.hidden_pids.sort_unstable();
    owners
}

/// Every PID in `/proc`, or None when `/proc` cannot be read.
fn list_pids() -> Option<Vec<u32>> {
    let proc_dir = open_dir("/proc").ok()?;
    let entries = Dir::read_from(&proc_dir).ok()?;
    Some(
        entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().to_str().ok()?.parse().ok())
            .collect(),
    )
}

fn open_dir(path: impl rustix::path::Arg) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// True when `stat` of `/proc/PID/fd` gives the number of open descriptors (Linux 6.2 and later;
/// before, it gives 0). This process has stdio open, so its own says.
fn kernel_counts_open_fds() -> bool {
    rustix::fs::stat("/proc/self/fd").is_ok_and(|stat| stat.st_size > 0)
}

/// One process's fd table, and the descriptors to read in it.
struct FdTable {
    pid: u32,
    /// `/proc/PID/fd`: links are read relative to it, and it lists what the first pass missed.
    dir: Dir,
    /// How many descriptors it has open, when the kernel says: then `0..open` are read first.
    open: Option<u32>,
    /// Otherwise, the descriptors its directory listed.
    listed: Vec<u32>,
}

impl FdTable {
    fn open(pid: u32, counts_open: bool) -> rustix::io::Result<FdTable> {
        let fd = open_dir(format!("/proc/{pid}/fd"))?;
        let open = if counts_open {
            let size = rustix::fs::fstat(&fd)?.st_size;
            Some(u32::try_from(size).unwrap_or(u32::MAX))
        } else {
            None
        };
        let mut table = FdTable {
            pid,
            dir: Dir::new(fd)?,
            open,
            listed: Vec::new(),
        };
        if open.is_none() {
            table.listed = table.list_from(0);
        }
        Ok(table)
    }

    /// How many descriptors the first pass reads.
    fn candidates(&self) -> usize {
        self.open.map_or(self.listed.len(), |open| open as usize)
    }

    /// The descriptor at `index` among the candidates.
    fn candidate(&self, index: usize) -> u32 {
        match self.open {
            Some(_) => index as u32,
            None => self.listed[index],
        }
    }

    /// How many of `0..open` may turn out closed before guessing stops.
    fn misses_allowed(&self) -> usize {
        self.open.map_or(usize::MAX, |open| open as usize / 16 + 8)
    }

    /// Reads the candidates at `indices`, adding sockets to `found`. Stops once the misses counted
    /// in `misses` go over the allowance, and then says where: candidates from there on are unread.
    fn read(
        &self,
        indices: Range<usize>,
        misses: &AtomicUsize,
        found: &mut Found,
    ) -> Result<(), usize> {
        let allowed = self.misses_allowed();
        for index in indices {
            let open = read_link(&self.dir, self.candidate(index), found, self.pid);
            if !open && misses.fetch_add(1, Ordering::Relaxed) >= allowed {
                return Err(index + 1);
            }
        }
        Ok(())
    }

    /// The descriptors open from `from` on: the directory's position is descriptor + 2.
    fn list_from(&mut self, from: u32) -> Vec<u32> {
        let mut fds = Vec::new();
        if self.dir.seek(i64::from(from) + 2).is_err() {
            return fds;
        }
        while let Some(entry) = self.dir.read() {
            let Ok(entry) = entry else { break };
            if let Some(fd) = std::str::from_utf8(entry.file_name().to_bytes())
                .ok()
                .and_then(|name| name.parse::<u32>().ok())
                .filter(|fd| *fd >= from)
            {
                fds.push(fd);
            }
        }
        fds
    }

    /// Reads what the first pass left: every descriptor from `from` on, except those `read_already`
    /// says were read. A descriptor open all along is read by one pass or the other, however the
    /// table changed meanwhile.
    fn read_rest(&mut self, from: u32, read_already: impl Fn(u32) -> bool, found: &mut Found) {
        for fd in self.list_from(from) {
            if !read_already(fd) {
                read_link(&self.dir, fd, found, self.pid);
            }
        }
    }

    /// The whole table, on this thread.
    fn walk_alone(mut self, found: &mut Found) {
        let misses = AtomicUsize::new(0);
        let first_pass = self.read(0..self.candidates(), &misses, found);
        if let Some(open) = self.open {
            let from = first_pass.err().map_or(open, |index| index as u32);
            self.read_rest(from, |_| false, found);
        }
    }
}

/// Walks the large fd tables in chunks of `chunk` candidates, on `threads` threads, then what
/// each table's first pass left; returns each thread's finds.
fn walk_large_tables(tables: &mut [FdTable], threads: usize, chunk: usize) -> Vec<Found> {
    let chunks: Vec<(usize, Range<usize>)> = tables
        .iter()
        .enumerate()
        .flat_map(|(table, fds)| {
            (0..fds.candidates())
                .step_by(chunk)
                .map(move |start| (table, start..(start + chunk).min(fds.candidates())))
        })
        .collect();
    // Per chunk: read whole.
    let done: Vec<AtomicBool> = chunks.iter().map(|_| AtomicBool::new(false)).collect();
    let misses: Vec<AtomicUsize> = tables.iter().map(|_| AtomicUsize::new(0)).collect();
    let next = AtomicUsize::new(0);
    let shared: &[FdTable] = tables;
    let walk = || {
        let mut found = Found::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some((table, indices)) = chunks.get(index) else {
                return found;
            };
            let (fds, misses) = (&shared[*table], &misses[*table]);
            if misses.load(Ordering::Relaxed) > fds.misses_allowed() {
                continue;
            }
            if fds.read(indices.clone(), misses, &mut found).is_ok() {
                done[index].store(true, Ordering::Relaxed);
            }
        }
    };
    let mut results = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(walk)).collect();
        let mut results = vec![walk()];
        results.extend(helpers.into_iter().filter_map(|h| h.join().ok()));
        results
    });
    let mut rest = Found::new();
    for (number, table) in tables.iter_mut().enumerate() {
        let Some(open) = table.open else { continue };
        let ours = || {
            chunks
                .iter()
                .zip(&done)
                .filter(move |((t, _), _)| *t == number)
                .map(|((_, indices), done)| (indices, done.load(Ordering::Relaxed)))
        };
        let from = ours()
            .find(|(_, done)| !done)
            .map_or(open, |(indices, _)| indices.start as u32);
        let read_already =
            |fd: u32| ours().any(|(indices, done)| done && indices.contains(&(fd as usize)));
        table.read_rest(from, read_already, &mut rest);
    }
    results.push(rest);
    results
}

/// Reads the link of `fd` in the fd directory `dir`; adds `(inode, pid)` to `found` if it is a
/// socket. Returns whether `fd` was open.
fn read_link(dir: &Dir, fd: u32, found: &mut Found, pid: u32) -> bool {
    let mut name = [0u8; 12];
    let mut number = itoa::Buffer::new();
    let digits = number.format(fd).as_bytes();
    name[..digits.len()].copy_from_slice(digits);
    let Ok(name) = std::ffi::CStr::from_bytes_with_nul(&name[..=digits.len()]) else {
        return false;
    };
    let mut link = [0u8; 64];
    let Ok(dir) = dir.fd() else {
        return false;
    };
    let Ok(length) = rustix::fs::readlinkat_raw(dir, name, &mut link) else {
        return false;
    };
    let inode = link[..length]
        .strip_prefix(b"socket:[")
        .and_then(|rest| rest.strip_suffix(b"]"))
        .and_then(|digits| std::str::from_utf8(digits).ok()?.parse().ok());
    if let Some(inode) = inode {
        found.push((inode, pid));
    }
    true
}

#[cfg(test)]
mod tests;
