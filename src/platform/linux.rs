//! Linux: sockets from one netlink sock_diag dump per family and protocol (queues, UDP peers, uid and
//! inode included, state filtered in the kernel), owners from a walk of `/proc/*/fd`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::ops::RangeInclusive;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP},
    inet::{ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
use rustix::fs::{CWD, Dir, Mode, OFlags};

use super::{Owners, Query};
use crate::error::{Error, Result};
use crate::sockets::model::{Proto, RawSocket, TcpState};

/// Kernel dumps come in chunks of up to 32 KiB; a larger buffer lets one recv take a whole chunk.
const RECV_BUFFER_BYTES: usize = 64 * 1024;

/// Lists the sockets the query asks for, one kernel dump per (family, protocol).
pub fn list_sockets(query: &Query) -> Result<Vec<RawSocket>> {
    let mut sockets = Vec::new();
    for (family, wanted) in [(AF_INET, query.ipv4), (AF_INET6, query.ipv6)] {
        if !wanted {
            continue;
        }
        if query.tcp && !query.tcp_states.is_empty() {
            let states = query
                .tcp_states
                .iter()
                .fold(0u32, |mask, state| mask | 1 << kernel_state_number(*state));
            dump(family, IPPROTO_TCP, states, &mut sockets)?;
        }
        if query.udp {
            // A UDP socket's kernel state is ESTABLISHED once connected, CLOSE otherwise.
            let states = match query.udp_connected {
                Some(true) => StateFlags::ESTABLISHED.bits(),
                Some(false) => StateFlags::CLOSE.bits(),
                None => StateFlags::all().bits(),
            };
            dump(family, IPPROTO_UDP, states, &mut sockets)?;
        }
    }
    Ok(sockets)
}

fn dump(family: u8, protocol: u8, states: u32, into: &mut Vec<RawSocket>) -> Result<()> {
    let what = format!(
        "listing {} sockets (netlink sock_diag)",
        describe(family, protocol)
    );
    let fail = |source: io::Error| Error::io(what.clone(), source);

    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(fail)?;
    socket.bind_auto().map_err(fail)?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(fail)?;

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let socket_id = if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::from_bits_retain(states),
            socket_id,
        })
        .into(),
    );
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0).map_err(fail)?;

    let proto = if protocol == IPPROTO_TCP {
        Proto::Tcp
    } else {
        Proto::Udp
    };
    let mut buffer = vec![0u8; RECV_BUFFER_BYTES];
    loop {
        let size = socket.recv(&mut &mut buffer[..], 0).map_err(fail)?;
        if size == 0 {
            return Ok(());
        }
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&buffer[offset..size])
                .map_err(|err| fail(io::Error::new(io::ErrorKind::InvalidData, err.to_string())))?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                    into.push(convert(proto, &response));
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(err) => {
                    let source = err.to_io();
                    return Err(fail(source));
                }
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

fn describe(family: u8, protocol: u8) -> &'static str {
    match (family == AF_INET, protocol == IPPROTO_TCP) {
        (true, true) => "TCP/IPv4",
        (true, false) => "UDP/IPv4",
        (false, true) => "TCP/IPv6",
        (false, false) => "UDP/IPv6",
    }
}

fn convert(proto: Proto, response: &InetResponse) -> RawSocket {
    let header = &response.header;
    let id = &header.socket_id;
    let remote = (id.destination_port != 0 || !id.destination_address.is_unspecified())
        .then_some((id.destination_address, id.destination_port));
    let state = match proto {
        Proto::Tcp => Some(state_from_kernel(header.state)),
        Proto::Udp => None,
    };
    RawSocket {
        proto,
        local_addr: id.source_address,
        local_port: id.source_port,
        remote,
        state,
        recv_q: Some(header.recv_queue),
        send_q: Some(header.send_queue),
        uid: Some(header.uid),
        inode: (header.inode != 0).then_some(u64::from(header.inode)),
        pids: None,
    }
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

/// Finds the processes that hold the given socket inodes by reading every `/proc/PID/fd` link.
pub fn owners(inodes: &HashSet<u64>) -> Owners {
    let mut owners = Owners::default();
    if inodes.is_empty() {
        return owners;
    }
    let Ok(proc_dir) = rustix::fs::openat(
        CWD,
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        owners.hidden = true;
        return owners;
    };
    let Ok(entries) = Dir::read_from(&proc_dir) else {
        owners.hidden = true;
        return owners;
    };
    let pids: Vec<u32> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().to_str().ok()?.parse().ok())
        .collect();
    let mut found: HashMap<u64, Vec<u32>> = HashMap::new();
    for pid in pids {
        match socket_inodes_of(pid) {
            Ok(held) => {
                for inode in held.into_iter().filter(|inode| inodes.contains(inode)) {
                    let holders = found.entry(inode).or_default();
                    if !holders.contains(&pid) {
                        holders.push(pid);
                    }
                }
            }
            Err(err) if err == rustix::io::Errno::ACCESS || err == rustix::io::Errno::PERM => {
                owners.hidden = true;
            }
            // The process ended while we looked: nothing to report.
            Err(_) => {}
        }
    }
    owners.by_inode = found;
    owners
}

/// The inodes of every socket process `pid` has open.
fn socket_inodes_of(pid: u32) -> rustix::io::Result<Vec<u64>> {
    let fd_dir = rustix::fs::openat(
        CWD,
        format!("/proc/{pid}/fd"),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut inodes = Vec::new();
    let mut link = [0u8; 64];
    for entry in Dir::read_from(&fd_dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        let Ok(length) = rustix::fs::readlinkat_raw(&fd_dir, name, &mut link) else {
            continue;
        };
        if let Some(inode) = link[..length]
            .strip_prefix(b"socket:[")
            .and_then(|rest| rest.strip_suffix(b"]"))
            .and_then(|digits| std::str::from_utf8(digits).ok()?.parse().ok())
        {
            inodes.push(inode);
        }
    }
    Ok(inodes)
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
    fn kernel_state_numbers_follow_tcp_states_h() {
        assert_eq!(kernel_state_number(TcpState::Established), 1);
        assert_eq!(kernel_state_number(TcpState::Listen), 10);
        assert_eq!(kernel_state_number(TcpState::Closing), 11);
        assert_eq!(state_from_kernel(6), TcpState::TimeWait);
        assert_eq!(state_from_kernel(12), TcpState::SynRecv);
    }
}
