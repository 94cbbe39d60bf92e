//! Linux's neighbour table (ARP for IPv4, neighbour discovery for IPv6), read over rtnetlink:
//! is an address on a directly connected network, and did the kernel fail to find it there?

use std::net::IpAddr;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// `RTM_GETNEIGH` and `RTM_NEWNEIGH` (linux/rtnetlink.h).
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
/// The end of a dump, and an error (linux/netlink.h).
const NLMSG_DONE: u16 = 3;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
/// `NDA_DST`: the neighbour's address (linux/neighbour.h).
const NDA_DST: u16 = 1;
/// Neighbour states that mean "asked, and no answer" (linux/neighbour.h).
const NUD_INCOMPLETE: u16 = 0x01;
const NUD_FAILED: u16 = 0x20;
/// The header of a netlink message, and of a neighbour message after it.
const NLMSG_HEADER: usize = 16;
const NDMSG: usize = 12;

/// True when the kernel's neighbour table has an entry for `ip` itself (so `ip` is on a
/// directly connected network) that is still unresolved or failed: nothing answered ARP or
/// neighbour discovery. False when it cannot tell.
pub fn unresolved(ip: IpAddr) -> bool {
    state_of(ip).is_some_and(|state| state & (NUD_INCOMPLETE | NUD_FAILED) != 0)
}

/// The neighbour state of `ip`, if the table has it.
fn state_of(ip: IpAddr) -> Option<u16> {
    let family = match ip {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    };
    let mut socket = Socket::new(NETLINK_ROUTE).ok()?;
    socket.bind_auto().ok()?;
    socket.connect(&SocketAddr::new(0, 0)).ok()?;
    let mut request = Vec::with_capacity(NLMSG_HEADER + NDMSG);
    request.extend_from_slice(&((NLMSG_HEADER + NDMSG) as u32).to_ne_bytes());
    request.extend_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    request.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel's
    request.push(family);
    request.resize(NLMSG_HEADER + NDMSG, 0);
    socket.send(&request, 0).ok()?;
    let wanted = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let mut found = None;
    // Bounded: a neighbour table fills a few buffers at most.
    for _ in 0..256 {
        let mut buffer = vec![0u8; 32 * 1024];
        let size = socket.recv(&mut &mut buffer[..], 0).ok()?;
        match scan(&buffer[..size], &wanted, &mut found) {
            Scan::More => continue,
            Scan::Done => return found,
        }
    }
    found
}

enum Scan {
    More,
    Done,
}

/// Walks one buffer of netlink messages, noting the state of the entry for `wanted`.
fn scan(bytes: &[u8], wanted: &[u8], found: &mut Option<u16>) -> Scan {
    let mut offset = 0;
    while offset + NLMSG_HEADER <= bytes.len() {
        let length = u32_at(bytes, offset) as usize;
        let kind = u16_at(bytes, offset + 4);
        if length < NLMSG_HEADER || offset + length > bytes.len() {
            return Scan::Done;
        }
        match kind {
            NLMSG_DONE | NLMSG_ERROR => return Scan::Done,
            RTM_NEWNEIGH if length >= NLMSG_HEADER + NDMSG => {
                let message = &bytes[offset + NLMSG_HEADER..offset + length];
                let state = u16_at(message, 8);
                if destination(&message[NDMSG..]) == Some(wanted) {
                    *found = Some(state);
                }
            }
            _ => {}
        }
        offset += align(length);
    }
    if bytes.is_empty() {
        Scan::Done
    } else {
        Scan::More
    }
}

/// The `NDA_DST` attribute among a neighbour message's attributes.
fn destination(mut attributes: &[u8]) -> Option<&[u8]> {
    while attributes.len() >= 4 {
        let length = usize::from(u16_at(attributes, 0));
        let kind = u16_at(attributes, 2);
        if length < 4 || length > attributes.len() {
            return None;
        }
        if kind == NDA_DST {
            return Some(&attributes[4..length]);
        }
        attributes = &attributes[align(length).min(attributes.len())..];
    }
    None
}

fn align(length: usize) -> usize {
    (length + 3) & !3
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_not_an_unresolved_neighbour() {
        assert!(!unresolved("127.0.0.1".parse().unwrap()));
        assert!(!unresolved("::1".parse().unwrap()));
    }
}
