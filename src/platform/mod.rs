//! Everything that differs between operating systems, behind the same few functions on every OS.
//!
//! The split: on Linux, one netlink sock_diag dump per family and protocol gives queues, UDP peers,
//! uid and inode in one pass, and owners come from `/proc` only when asked for. On macOS and
//! Windows, netstat2 enumerates sockets (with their owners; it gives no queues and no UDP peers).
//! The netstat2 path (`portable`) is built on Linux too, and a test checks it against the Linux
//! backend, so the code other OSes run is exercised here.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;

use crate::error::Result;
use crate::sockets::model::{RawSocket, TcpState};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(not(target_os = "linux"))]
mod other;
pub mod portable;

/// What to ask the OS for. The backend may return more than asked; the caller filters again.
#[derive(Debug, Clone)]
pub struct Query {
    pub tcp: bool,
    pub udp: bool,
    pub ipv4: bool,
    pub ipv6: bool,
    /// TCP states wanted (empty: no TCP sockets at all).
    pub tcp_states: Vec<TcpState>,
    /// UDP sockets wanted: only connected (Some(true)), only unconnected (Some(false)), or all.
    pub udp_connected: Option<bool>,
}

/// Which processes hold which sockets.
#[derive(Debug, Default)]
pub struct Owners {
    pub by_inode: HashMap<u64, Vec<u32>>,
    /// True when some processes could not be inspected (those of other users, when not root).
    pub hidden: bool,
}

/// Lists sockets with the OS's best backend.
pub fn list_sockets(query: &Query) -> Result<Vec<RawSocket>> {
    #[cfg(target_os = "linux")]
    return linux::list_sockets(query);
    #[cfg(not(target_os = "linux"))]
    return portable::list_sockets(query);
}

/// Finds which processes hold the given socket inodes. Only Linux needs this: elsewhere the
/// socket listing already carries its owners.
pub fn socket_owners(inodes: &HashSet<u64>) -> Owners {
    #[cfg(target_os = "linux")]
    return linux::owners(inodes);
    #[cfg(not(target_os = "linux"))]
    return Owners {
        by_inode: HashMap::new(),
        hidden: !inodes.is_empty(),
    };
}

/// The range the OS hands client (ephemeral) ports out of, if it can be read.
pub fn ephemeral_port_range() -> Option<RangeInclusive<u16>> {
    #[cfg(target_os = "linux")]
    return linux::ephemeral_port_range();
    #[cfg(not(target_os = "linux"))]
    return other::ephemeral_port_range();
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream, UdpSocket};

    fn everything() -> Query {
        Query {
            tcp: true,
            udp: true,
            ipv4: true,
            ipv6: true,
            tcp_states: TcpState::ALL.to_vec(),
            udp_connected: None,
        }
    }

    type Key = (
        crate::sockets::model::Proto,
        std::net::IpAddr,
        u16,
        Option<TcpState>,
    );

    fn key(socket: &RawSocket) -> Key {
        (
            socket.proto,
            socket.local_addr,
            socket.local_port,
            socket.state,
        )
    }

    /// The netstat2 backend (what macOS and Windows run) sees the same endpoints as the Linux one.
    #[test]
    fn portable_backend_agrees_with_linux_backend() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, _) = listener.accept().unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ours = [
            listener.local_addr().unwrap().port(),
            client.local_addr().unwrap().port(),
            udp.local_addr().unwrap().port(),
        ];
        let mine = |sockets: Vec<RawSocket>| -> Vec<Key> {
            let mut kept: Vec<_> = sockets
                .iter()
                .filter(|s| ours.contains(&s.local_port))
                .map(key)
                .collect();
            kept.sort();
            kept
        };
        let linux = mine(linux::list_sockets(&everything()).unwrap());
        let portable = mine(portable::list_sockets(&everything()).unwrap());
        assert_eq!(
            linux.len(),
            4,
            "listener, both ends of the connection, UDP: {linux:?}"
        );
        assert_eq!(linux, portable);
    }

    #[test]
    fn owners_of_our_own_sockets_are_this_process() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sockets: Vec<_> = linux::list_sockets(&everything())
            .unwrap()
            .into_iter()
            .filter(|s| s.local_port == port)
            .collect();
        assert_eq!(sockets.len(), 1);
        let inode = sockets[0].inode.expect("a listener has an inode");
        let owners = socket_owners(&HashSet::from([inode]));
        assert_eq!(owners.by_inode.get(&inode), Some(&vec![std::process::id()]));
    }
}
