//! Everything that differs between operating systems, behind the same few functions on every OS.
//!
//! The split: on Linux, one netlink sock_diag dump per family and protocol gives queues, UDP peers,
//! uid and inode in one pass, and owners come from `/proc` only when asked for. On macOS and
//! Windows, netstat2 enumerates sockets (with their owners; it gives no queues and no UDP peers).
//! The netstat2 path (`portable`) is built on Linux too, and a test checks it against the Linux
//! backend, so the code other OSes run is exercised here.

use std::ops::RangeInclusive;

use crate::error::Result;
use crate::net::socket::{RawSocket, TcpState};

#[cfg(target_os = "linux")]
mod fd_walk;
pub mod files;
pub mod limits;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod neighbour;
#[cfg(not(target_os = "linux"))]
mod other;
pub mod portable;
pub mod sockopt;
pub mod terminal;
pub mod threads;

/// Which sockets to ask the OS for. The backend may return more than asked; the caller filters
/// again.
#[derive(Debug, Clone)]
pub struct Selection {
    /// TCP sockets wanted.
    pub tcp: bool,
    /// UDP sockets wanted.
    pub udp: bool,
    /// IPv4 sockets wanted.
    pub ipv4: bool,
    /// IPv6 sockets wanted.
    pub ipv6: bool,
    /// TCP states wanted (empty: no TCP sockets at all).
    pub tcp_states: Vec<TcpState>,
    /// UDP sockets wanted: only connected (Some(true)), only unconnected (Some(false)), or all.
    pub udp_connected: Option<bool>,
    /// TCP internals wanted (`tcp_info`), where the OS gives them in the same listing.
    pub tcp_info: bool,
}

/// Which processes hold which sockets.
#[derive(Debug, Default)]
pub struct Owners {
    /// (socket inode, PID) for each process holding each socket, in ascending order, without
    /// repeats (see [`Owners::holders`]).
    pub by_inode: Vec<(u64, u32)>,
    /// True when some processes could not be inspected (those of other users, when not root).
    pub hidden: bool,
    /// The processes that could not be inspected, in ascending order.
    pub hidden_pids: Vec<u32>,
}

impl Owners {
    /// The PIDs holding the socket `inode`, in ascending order; none when no process seen does.
    pub fn holders(&self, inode: u64) -> impl ExactSizeIterator<Item = u32> + '_ {
        let start = self.by_inode.partition_point(|&(held, _)| held < inode);
        let end = self.by_inode.partition_point(|&(held, _)| held <= inode);
        self.by_inode[start..end].iter().map(|&(_, pid)| pid)
    }
}

/// Hands every socket the selection asks for to `sink`, with the OS's best backend. Streaming lets
/// the caller filter and convert as sockets arrive, without a copy of the whole list.
pub fn for_each_socket(selection: &Selection, sink: &mut dyn FnMut(RawSocket)) -> Result<()> {
    #[cfg(target_os = "linux")]
    return linux::for_each_socket(selection, sink);
    #[cfg(not(target_os = "linux"))]
    return portable::for_each_socket(selection, sink);
}

/// Finds which processes hold each socket, by inode. Only Linux needs this: elsewhere the socket
/// listing already carries its owners, and this returns nothing.
pub fn socket_owners() -> Owners {
    #[cfg(target_os = "linux")]
    return fd_walk::owners();
    #[cfg(not(target_os = "linux"))]
    return Owners::default();
}

/// The range the OS hands client (ephemeral) ports out of, if it can be read.
pub fn ephemeral_port_range() -> Option<RangeInclusive<u16>> {
    #[cfg(target_os = "linux")]
    return linux::ephemeral_port_range();
    #[cfg(not(target_os = "linux"))]
    return other::ephemeral_port_range();
}

/// True when a connect failed on an ICMP error that std has no `ErrorKind` for: host down
/// (EHOSTDOWN: ICMP host unknown), protocol unreachable (ENOPROTOOPT, ICMP type 3 code 2), an
/// IPv6 parameter problem such as an unknown next header (EPROTO), a failed source route
/// (EOPNOTSUPP). A local connect never fails with these.
pub fn is_icmp_unreachable(err: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            err.raw_os_error(),
            Some(libc::EHOSTDOWN | libc::ENOPROTOOPT | libc::EPROTO | libc::EOPNOTSUPP)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

/// True when `ip` is on a directly connected network and nothing answered the kernel's ARP or
/// neighbour discovery for it (its neighbour entry is incomplete or failed). False when the OS
/// cannot tell.
pub fn neighbour_unresolved(ip: std::net::IpAddr) -> bool {
    #[cfg(target_os = "linux")]
    return neighbour::unresolved(ip);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = ip;
        false
    }
}

/// The nameservers the system resolver asks (the `nameserver` lines of `/etc/resolv.conf`, at
/// most three, as the resolver uses), each on port 53; none where there is no such file.
pub fn nameservers() -> Vec<std::net::SocketAddr> {
    #[cfg(unix)]
    {
        nameservers_in(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
    }
    #[cfg(not(unix))]
    {
        Vec::new()
    }
}

/// The first three `nameserver` lines of a resolv.conf's text, on port 53.
#[cfg_attr(not(unix), allow(dead_code))]
fn nameservers_in(text: &str) -> Vec<std::net::SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        // A scoped IPv6 address (fe80::1%eth0) is left out: std cannot parse its scope.
        .filter_map(|address| address.parse::<std::net::IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .take(3)
        .collect()
}

/// Where the system keeps its services database (`/etc/services`).
#[cfg(unix)]
pub const SERVICES_FILE: Option<&str> = Some("/etc/services");
/// Where the system keeps its services database.
#[cfg(windows)]
pub const SERVICES_FILE: Option<&str> = Some(r"C:\Windows\System32\drivers\etc\services");
/// This OS has no services database soquete knows of.
#[cfg(not(any(unix, windows)))]
pub const SERVICES_FILE: Option<&str> = None;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream, UdpSocket};

    fn listed(lister: fn(&Selection, &mut dyn FnMut(RawSocket)) -> Result<()>) -> Vec<RawSocket> {
        let mut sockets = Vec::new();
        lister(&everything(), &mut |socket| sockets.push(socket)).unwrap();
        sockets
    }

    fn everything() -> Selection {
        Selection {
            tcp: true,
            udp: true,
            ipv4: true,
            ipv6: true,
            tcp_states: TcpState::ALL.to_vec(),
            udp_connected: None,
            tcp_info: false,
        }
    }

    use crate::net::socket::Proto;

    type Key = (Proto, std::net::IpAddr, u16, Option<TcpState>);

    /// What both backends can tell: netstat2 does not say whether a UDP socket is connected.
    fn key(socket: &RawSocket) -> Key {
        let state = match socket.proto {
            Proto::Tcp => socket.state,
            Proto::Udp => None,
        };
        (socket.proto, socket.local_addr, socket.local_port, state)
    }

    /// The netstat2 backend (what macOS and Windows run) sees the same endpoints as the Linux one.
    #[test]
    fn portable_backend_agrees_with_linux_backend() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let expected: Vec<Key> = vec![
            (
                Proto::Tcp,
                ip(&listener.local_addr()),
                port(&listener.local_addr()),
                Some(TcpState::Listen),
            ),
            (
                Proto::Tcp,
                ip(&client.local_addr()),
                port(&client.local_addr()),
                Some(TcpState::Established),
            ),
            (
                Proto::Tcp,
                ip(&server_side.local_addr()),
                port(&server_side.local_addr()),
                Some(TcpState::Established),
            ),
            (
                Proto::Udp,
                ip(&udp.local_addr()),
                port(&udp.local_addr()),
                None,
            ),
        ];
        // Other tests open and close sockets meanwhile: check that ours are in both listings,
        // rather than comparing whole listings taken at two different moments.
        let linux: Vec<Key> = listed(linux::for_each_socket).iter().map(key).collect();
        let portable: Vec<Key> = listed(portable::for_each_socket).iter().map(key).collect();
        for socket in &expected {
            assert!(linux.contains(socket), "Linux backend lists {socket:?}");
            assert!(
                portable.contains(socket),
                "netstat2 backend lists {socket:?}"
            );
        }
    }

    fn ip(addr: &std::io::Result<std::net::SocketAddr>) -> std::net::IpAddr {
        addr.as_ref().unwrap().ip()
    }

    fn port(addr: &std::io::Result<std::net::SocketAddr>) -> u16 {
        addr.as_ref().unwrap().port()
    }

    #[test]
    fn owners_of_our_own_sockets_are_this_process() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sockets: Vec<_> = listed(linux::for_each_socket)
            .into_iter()
            .filter(|s| s.local_port == port)
            .collect();
        assert_eq!(sockets.len(), 1);
        let inode = sockets[0].inode.expect("a listener has an inode");
        let owners = socket_owners();
        let holders: Vec<u32> = owners.holders(inode).collect();
        assert_eq!(holders, [std::process::id()]);
    }

    #[test]
    fn resolv_conf_nameservers_are_read_in_order_three_at_most() {
        let text = "# comment\nsearch lan\nnameserver 192.0.2.53\nnameserver ::1\nnameserver bogus\n\
                    nameserver fe80::1%eth0\nnameserver 192.0.2.54\nnameserver 192.0.2.55\n";
        let read: Vec<String> = nameservers_in(text).iter().map(|a| a.to_string()).collect();
        assert_eq!(read, ["192.0.2.53:53", "[::1]:53", "192.0.2.54:53"]);
    }
}
