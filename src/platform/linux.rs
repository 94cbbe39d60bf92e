//! Linux: sockets from one netlink sock_diag dump per family and protocol (queues, UDP peers, uid and
//! inode included, state filtered in the kernel), owners from a walk of `/proc/*/fd`.

use std::io;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};

use netlink_packet_core::{
    Emitable, ErrorBuffer, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer,
    NetlinkHeader, NetlinkMessage, NlasIterator, Parseable,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, AF_INET6, INET_DIAG_INFO, IPPROTO_TCP, IPPROTO_UDP, SOCK_DIAG_BY_FAMILY},
    inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags, nlas},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
use rustix::fs::{CWD, Dir, Mode, OFlags};

use super::{Owners, Selection};
use crate::error::{Error, Result};
use crate::net::socket::{Proto, RawSocket, TcpInfo, TcpState};

/// Kernel dumps come in chunks of up to 32 KiB; a larger buffer lets one recv take a whole chunk.
const RECV_BUFFER_BYTES: usize = 64 * 1024;

/// One kernel dump to ask for.
#[derive(Debug, Clone, Copy)]
struct Dump {
    family: u8,
    protocol: u8,
    states: u32,
    /// Ask for `struct tcp_info` (INET_DIAG_INFO) in the same dump.
    info: bool,
}

/// What a dump thread hands over: received bytes, or the end of its dump.
enum Chunk {
    Bytes { dump: Dump, bytes: Vec<u8> },
    Failed(Error),
}

/// Chunks in flight between the dump threads and the parser.
const CHUNKS_IN_FLIGHT: usize = 16;

/// Hands every socket the selection asks for to `sink`, one kernel dump per (family, protocol).
///
/// The dumps run on threads of their own and hand received bytes over, so the kernel's work
/// (most of the cost) overlaps with parsing and with what `sink` does.
pub fn for_each_socket(selection: &Selection, sink: &mut dyn FnMut(RawSocket)) -> Result<()> {
    let dumps = plan(selection);
    std::thread::scope(|scope| {
        let (chunks_tx, chunks) = crossbeam_channel::bounded::<Chunk>(CHUNKS_IN_FLIGHT);
        // Parsed buffers go back to the dump threads: fresh memory costs a page fault per page.
        let (spare_tx, spare) = crossbeam_channel::bounded::<Vec<u8>>(CHUNKS_IN_FLIGHT * 2);
        for dump in dumps {
            let chunks_tx = chunks_tx.clone();
            let spare = spare.clone();
            scope.spawn(move || {
                if let Err(err) = receive(dump, &chunks_tx, &spare) {
                    let _ = chunks_tx.send(Chunk::Failed(err));
                }
            });
        }
        drop(chunks_tx);
        let mut first_error = None;
        // Drain every chunk even after an error, so no dump thread is left blocked on a send.
        for chunk in chunks {
            match chunk {
                Chunk::Bytes { dump, bytes } if first_error.is_none() => {
                    if let Err(err) = parse(dump, &bytes, sink) {
                        first_error = Some(err);
                    }
                    let _ = spare_tx.try_send(bytes);
                }
                Chunk::Bytes { .. } => {}
                Chunk::Failed(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    })
}

/// The dumps a selection needs.
fn plan(selection: &Selection) -> Vec<Dump> {
    let mut dumps = Vec::new();
    for (family, wanted) in [(AF_INET, selection.ipv4), (AF_INET6, selection.ipv6)] {
        if !wanted {
            continue;
        }
        if selection.tcp && !selection.tcp_states.is_empty() {
            let states = selection
                .tcp_states
                .iter()
                .fold(0u32, |mask, state| mask | 1 << kernel_state_number(*state));
            dumps.push(Dump {
                family,
                protocol: IPPROTO_TCP,
                states,
                info: selection.tcp_info,
            });
        }
        if selection.udp {
            // A UDP socket's kernel state is ESTABLISHED once connected, CLOSE otherwise.
            let states = match selection.udp_connected {
                Some(true) => StateFlags::ESTABLISHED.bits(),
                Some(false) => StateFlags::CLOSE.bits(),
                None => StateFlags::all().bits(),
            };
            dumps.push(Dump {
                family,
                protocol: IPPROTO_UDP,
                states,
                info: false,
            });
        }
    }
    dumps
}

fn failure(dump: Dump) -> impl Fn(io::Error) -> Error {
    move |source| {
        Error::io(
            format!(
                "listing {} sockets (netlink sock_diag)",
                describe(dump.family, dump.protocol)
            ),
            source,
        )
    }
}

/// Asks the kernel for one dump and hands the received bytes over until the dump is done.
fn receive(
    dump: Dump,
    chunks: &crossbeam_channel::Sender<Chunk>,
    spare: &crossbeam_channel::Receiver<Vec<u8>>,
) -> Result<()> {
    let fail = failure(dump);
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(&fail)?;
    socket.bind_auto().map_err(&fail)?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(&fail)?;

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let socket_id = if dump.family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family: dump.family,
            protocol: dump.protocol,
            extensions: if dump.info {
                ExtensionFlags::INFO
            } else {
                ExtensionFlags::empty()
            },
            states: StateFlags::from_bits_retain(dump.states),
            socket_id,
        })
        .into(),
    );
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0).map_err(&fail)?;

    loop {
        let mut buffer = spare.try_recv().unwrap_or_default();
        buffer.resize(RECV_BUFFER_BYTES, 0);
        let size = socket.recv(&mut &mut buffer[..], 0).map_err(&fail)?;
        buffer.truncate(size);
        let last = size == 0 || ends_dump(&buffer);
        if chunks
            .send(Chunk::Bytes {
                dump,
                bytes: buffer,
            })
            .is_err()
            || last
        {
            return Ok(());
        }
    }
}

/// True when `bytes` hold the message that ends a dump (done, or an error).
fn ends_dump(bytes: &[u8]) -> bool {
    let mut offset = 0;
    while let Ok(message) = NetlinkBuffer::new_checked(&bytes[offset..]) {
        if matches!(message.message_type(), NLMSG_DONE | NLMSG_ERROR) {
            return true;
        }
        let length = message.length() as usize;
        if length == 0 {
            return false;
        }
        offset += (length + 3) & !3;
        if offset >= bytes.len() {
            return false;
        }
    }
    false
}

/// Turns the messages in one received chunk into sockets.
fn parse(dump: Dump, bytes: &[u8], sink: &mut dyn FnMut(RawSocket)) -> Result<()> {
    let fail = failure(dump);
    let invalid = |err: netlink_packet_core::DecodeError| {
        fail(io::Error::new(io::ErrorKind::InvalidData, err.to_string()))
    };
    let proto = if dump.protocol == IPPROTO_TCP {
        Proto::Tcp
    } else {
        Proto::Udp
    };
    let mut offset = 0;
    while offset < bytes.len() {
        // Only the fixed inet_diag_msg header is read (and INET_DIAG_INFO when asked for):
        // skipping the generic message types keeps a 20,000-socket dump cheap.
        let message = NetlinkBuffer::new_checked(&bytes[offset..]).map_err(invalid)?;
        let length = message.length() as usize;
        match message.message_type() {
            SOCK_DIAG_BY_FAMILY => {
                let payload = message.payload();
                let header = InetResponseHeader::parse(payload).map_err(invalid)?;
                let mut socket = convert(proto, &header);
                if dump.info {
                    socket.tcp_info = payload.get(header.buffer_len()..).and_then(tcp_info_of);
                }
                sink(socket);
            }
            NLMSG_DONE => return Ok(()),
            NLMSG_ERROR => {
                let error = ErrorBuffer::new_checked(message.payload()).map_err(invalid)?;
                // An error message with code 0 is an acknowledgement, not a failure.
                return match error.code() {
                    None => Ok(()),
                    Some(code) => Err(fail(io::Error::from_raw_os_error(-code.get()))),
                };
            }
            _ => {}
        }
        if length == 0 {
            break;
        }
        // Messages are 4-byte aligned.
        offset += (length + 3) & !3;
    }
    Ok(())
}

fn describe(family: u8, protocol: u8) -> &'static str {
    match (family == AF_INET, protocol == IPPROTO_TCP) {
        (true, true) => "TCP/IPv4",
        (true, false) => "UDP/IPv4",
        (false, true) => "TCP/IPv6",
        (false, false) => "UDP/IPv6",
    }
}

fn convert(proto: Proto, header: &InetResponseHeader) -> RawSocket {
    let id = &header.socket_id;
    let remote = (id.destination_port != 0 || !id.destination_address.is_unspecified())
        .then_some((id.destination_address, id.destination_port));
    let state = match proto {
        Proto::Tcp => state_from_kernel(header.state),
        // A connected UDP socket is TCP_ESTABLISHED in the kernel, an unconnected one TCP_CLOSE.
        Proto::Udp if header.state == 1 => TcpState::Established,
        Proto::Udp => TcpState::Unconnected,
    };
    RawSocket {
        proto,
        local_addr: id.source_address,
        local_port: id.source_port,
        remote,
        state: Some(state),
        recv_q: Some(header.recv_queue),
        send_q: Some(header.send_queue),
        uid: Some(header.uid),
        inode: (header.inode != 0).then_some(u64::from(header.inode)),
        pids: None,
        tcp_info: None,
    }
}

/// The `struct tcp_info` among a socket's attributes, if the kernel gave one (not for TIME_WAIT
/// or half-open sockets) and it is as long as the crate reads (kernels before 5.x give less).
fn tcp_info_of(attributes: &[u8]) -> Option<TcpInfo> {
    let attribute = NlasIterator::new(attributes)
        .filter_map(|attribute| attribute.ok())
        .find(|attribute| attribute.kind() == INET_DIAG_INFO)?;
    let info = nlas::TcpInfo::parse(attribute.value()).ok()?;
    Some(TcpInfo {
        rtt_us: info.rtt,
        rttvar_us: info.rttvar,
        min_rtt_us: info.min_rtt,
        rto_us: info.rto,
        snd_cwnd: info.snd_cwnd,
        snd_mss: info.snd_mss,
        retransmits: info.retransmits,
        total_retrans: info.total_retrans,
        unacked: info.unacked,
        lost: info.lost,
        notsent_bytes: info.notsent_bytes,
        bytes_sent: info.bytes_sent,
        bytes_retrans: info.bytes_retrans,
        bytes_acked: info.bytes_acked,
        bytes_received: info.bytes_received,
        delivery_rate: info.delivery_rate,
        last_data_sent_ms: info.last_data_sent,
        last_data_recv_ms: info.last_data_recv,
        last_ack_recv_ms: info.last_ack_recv,
    })
}

/// The kernel's number for a TCP state (include/net/tcp_states.h).
fn kernel_state_number(state: TcpState) -> u32 {
    TcpState::ALL
        .iter()
        .position(|s| *s == state)
        .map_or(0, |index| index as u32 + 1)
}

fn state_from_kernel(number: u8) -> TcpState {
    match number {
        // TCP_NEW_SYN_RECV (12) is a request socket: the handshake is half done.
        12 => TcpState::SynRecv,
        n => TcpState::ALL
            .get(usize::from(n).wrapping_sub(1))
            .copied()
            .unwrap_or(TcpState::Close),
    }
}

/// A process with more open files than this has its fd table walked by every thread together, in
/// chunks of this many: one busy server can hold most of the system's sockets.
const SHARED_TABLE_FDS: usize = 1024;

/// An fd table too large for one thread: its directory, and the descriptor numbers in it.
struct LargeTable {
    pid: u32,
    dir: rustix::fd::OwnedFd,
    fds: Vec<u32>,
}

/// Finds the processes that hold each socket, by reading every `/proc/PID/fd` link. The walk is
/// the expensive part of `-p` (one readlink per open file in the system), so it is shared out
/// among one thread per core: first by process, then, for the few processes with very large fd
/// tables, by chunks of their descriptors.
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
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let next = AtomicUsize::new(0);
    let large = std::sync::Mutex::new(Vec::new());
    let walk = || {
        let mut found: Vec<(u64, u32)> = Vec::new();
        let mut hidden = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(&pid) = pids.get(index) else {
                return (found, hidden);
            };
            match socket_inodes_of(pid, &mut found, &large, shared_above) {
                Ok(()) => {}
                Err(err) if err == rustix::io::Errno::ACCESS || err == rustix::io::Errno::PERM => {
                    hidden.push(pid);
                }
                // The process ended while we looked: nothing to report.
                Err(_) => {}
            }
        }
    };
    // Each thread's (inode, pid) pairs and the PIDs it could not look into.
    type Found = (Vec<(u64, u32)>, Vec<u32>);
    let mut results: Vec<Found> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(walk)).collect();
        let mut results = vec![walk()];
        results.extend(helpers.into_iter().filter_map(|h| h.join().ok()));
        results
    });
    let large = large.into_inner().unwrap_or_default();
    if !large.is_empty() {
        let found = walk_large_tables(&large, threads, shared_above);
        results.extend(found.into_iter().map(|found| (found, Vec::new())));
    }
    for (found, hidden) in results {
        owners.hidden |= !hidden.is_empty();
        owners.hidden_pids.extend(hidden);
        for (inode, pid) in found {
            let holders = owners.by_inode.entry(inode).or_default();
            if !holders.contains(&pid) {
                holders.push(pid);
            }
        }
    }
    owners.hidden_pids.sort_unstable();
    owners
}

/// Every PID in `/proc`, or None when `/proc` cannot be read.
fn list_pids() -> Option<Vec<u32>> {
    let proc_dir = rustix::fs::openat(
        CWD,
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let entries = Dir::read_from(&proc_dir).ok()?;
    Some(
        entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().to_str().ok()?.parse().ok())
            .collect(),
    )
}

/// Adds `(inode, pid)` for every socket process `pid` has open; a table larger than
/// `shared_above` is left in `large`, for all threads to share.
fn socket_inodes_of(
    pid: u32,
    found: &mut Vec<(u64, u32)>,
    large: &std::sync::Mutex<Vec<LargeTable>>,
    shared_above: usize,
) -> rustix::io::Result<()> {
    let fd_dir = rustix::fs::openat(
        CWD,
        format!("/proc/{pid}/fd"),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut fds: Vec<u32> = Vec::new();
    for entry in Dir::read_from(&fd_dir)? {
        let Ok(entry) = entry else { continue };
        if let Some(fd) = std::str::from_utf8(entry.file_name().to_bytes())
            .ok()
            .and_then(|name| name.parse().ok())
        {
            fds.push(fd);
        }
    }
    if fds.len() > shared_above {
        if let Ok(mut large) = large.lock() {
            large.push(LargeTable {
                pid,
                dir: fd_dir,
                fds,
            });
        }
        return Ok(());
    }
    for fd in fds {
        if let Some(inode) = socket_inode(&fd_dir, fd) {
            found.push((inode, pid));
        }
    }
    Ok(())
}

/// Walks the large fd tables in chunks of `chunk` descriptors, on `threads` threads; returns each
/// thread's finds.
fn walk_large_tables(tables: &[LargeTable], threads: usize, chunk: usize) -> Vec<Vec<(u64, u32)>> {
    let chunks: Vec<(&LargeTable, &[u32])> = tables
        .iter()
        .flat_map(|table| table.fds.chunks(chunk).map(move |fds| (table, fds)))
        .collect();
    let next = AtomicUsize::new(0);
    let walk = || {
        let mut found = Vec::new();
        while let Some(&(table, fds)) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) {
            for &fd in fds {
                if let Some(inode) = socket_inode(&table.dir, fd) {
                    found.push((inode, table.pid));
                }
            }
        }
        found
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(walk)).collect();
        let mut results = vec![walk()];
        results.extend(helpers.into_iter().filter_map(|h| h.join().ok()));
        results
    })
}

/// The inode of the socket open as `fd` in the fd directory `fd_dir`; None if it is not a socket
/// (or closed meanwhile).
fn socket_inode(fd_dir: &rustix::fd::OwnedFd, fd: u32) -> Option<u64> {
    let mut name = [0u8; 12];
    let mut number = itoa::Buffer::new();
    let digits = number.format(fd).as_bytes();
    name[..digits.len()].copy_from_slice(digits);
    let name = std::ffi::CStr::from_bytes_with_nul(&name[..=digits.len()]).ok()?;
    let mut link = [0u8; 64];
    let length = rustix::fs::readlinkat_raw(fd_dir, name, &mut link).ok()?;
    link[..length]
        .strip_prefix(b"socket:[")
        .and_then(|rest| rest.strip_suffix(b"]"))
        .and_then(|digits| std::str::from_utf8(digits).ok()?.parse().ok())
}

/// The range Linux hands client ports out of (`net.ipv4.ip_local_port_range`).
pub fn ephemeral_port_range() -> Option<RangeInclusive<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u16>());
    match (numbers.next(), numbers.next()) {
        (Some(Ok(first)), Some(Ok(last))) if first <= last => Some(first..=last),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_fd_table_is_walked_in_shared_chunks_and_misses_nothing() {
        let sockets: Vec<_> = (0..40)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut inodes = Vec::new();
        for_each_socket(
            &Selection {
                tcp: false,
                udp: true,
                ipv4: true,
                ipv6: false,
                tcp_states: Vec::new(),
                udp_connected: None,
                tcp_info: false,
            },
            &mut |socket| {
                let ours = sockets
                    .iter()
                    .any(|s| s.local_addr().unwrap().port() == socket.local_port);
                if ours {
                    inodes.extend(socket.inode);
                }
            },
        )
        .unwrap();
        assert_eq!(inodes.len(), 40);
        // This process's table (our 40 sockets and more) is larger than 8: it is shared out.
        let owners = owners_sharing_above(8);
        for inode in inodes {
            let holders = owners.by_inode.get(&inode);
            assert!(
                holders.is_some_and(|pids| pids.contains(&std::process::id())),
                "{inode}: {holders:?}"
            );
        }
    }

    #[test]
    fn kernel_state_numbers_follow_tcp_states_h() {
        assert_eq!(kernel_state_number(TcpState::Established), 1);
        assert_eq!(kernel_state_number(TcpState::Listen), 10);
        assert_eq!(kernel_state_number(TcpState::Closing), 11);
        assert_eq!(state_from_kernel(6), TcpState::TimeWait);
        assert_eq!(state_from_kernel(12), TcpState::SynRecv);
    }
}
