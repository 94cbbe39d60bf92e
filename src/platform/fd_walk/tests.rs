use std::net::UdpSocket;
use std::os::fd::AsFd;

use super::*;

/// `count` UDP sockets on 127.0.0.1, and their inodes.
fn sockets(count: usize) -> (Vec<UdpSocket>, Vec<u64>) {
    let sockets: Vec<_> = (0..count)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let inodes = sockets
        .iter()
        .map(|s| rustix::fs::fstat(s.as_fd()).unwrap().st_ino)
        .collect();
    (sockets, inodes)
}

fn assert_ours(found: impl Fn(u64) -> bool, inodes: &[u64]) {
    for inode in inodes {
        assert!(found(*inode), "socket inode {inode} not found");
    }
}

fn owned_by_us(owners: &Owners) -> impl Fn(u64) -> bool + '_ {
    |inode| owners.holders(inode).any(|pid| pid == std::process::id())
}

#[test]
fn a_large_fd_table_is_walked_in_shared_chunks_and_misses_nothing() {
    let (_sockets, inodes) = sockets(40);
    // This process's table (our 40 sockets and more) is larger than 8: it is shared out.
    let owners = owners_sharing_above(8);
    assert_ours(owned_by_us(&owners), &inodes);
}

#[test]
fn gaps_in_the_table_and_descriptors_above_the_open_count_are_found() {
    let (mut held, _) = sockets(60);
    // Every other one of the first 40 closed: gaps below the count, the last 20 above it.
    let mut index = 0;
    held.retain(|_| {
        index += 1;
        index > 40 || index % 2 == 0
    });
    let inodes: Vec<u64> = held
        .iter()
        .map(|s| rustix::fs::fstat(s.as_fd()).unwrap().st_ino)
        .collect();
    assert_ours(owned_by_us(&owners_sharing_above(8)), &inodes);
    assert_ours(owned_by_us(&owners_sharing_above(100_000)), &inodes);
}

/// This process's table, with `open` in place of the kernel's count.
fn our_table(open: Option<u32>) -> FdTable {
    let mut table = FdTable::open(std::process::id(), kernel_counts_open_fds()).unwrap();
    table.open = open;
    if open.is_none() {
        table.listed = table.list_from(0);
    }
    table
}

#[test]
fn a_wrong_guess_of_the_open_count_still_finds_every_socket() {
    let (_sockets, inodes) = sockets(30);
    for open in [None, Some(0), Some(5), Some(100_000)] {
        let mut found = Found::new();
        our_table(open).walk_alone(&mut found);
        assert_ours(
            |inode| found.contains(&(inode, std::process::id())),
            &inodes,
        );
        let mut tables = [our_table(open)];
        let found: Found = walk_large_tables(&mut tables, 2, 4).concat();
        assert_ours(
            |inode| found.contains(&(inode, std::process::id())),
            &inodes,
        );
    }
}

#[test]
fn guessing_stops_after_a_few_misses() {
    let table = our_table(Some(100_000));
    let misses = AtomicUsize::new(0);
    let stopped = table.read(0..100_000, &misses, &mut Found::new());
    // About 6,258 misses are allowed; the descriptors other tests hold open meanwhile add hits.
    assert!(stopped.is_err_and(|at| at < 50_000), "{stopped:?}");
}
