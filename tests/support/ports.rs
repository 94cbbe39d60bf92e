//! Ports that are never released before use: a program that listens is started on port 0 and
//! its port is read from /proc ([`listening_port`]); a port nothing listens on is held, bound
//! but not listening, for as long as the test needs it refused ([`ClosedPort`]).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use socket2::{Domain, Socket, Type};

use super::{LIMIT, poll};

/// The TCP port that process `pid` listens on, once it does (within [`LIMIT`]): the socket
/// inodes among its open files, looked up in its network namespace's TCP tables.
pub fn listening_port(pid: u32) -> u16 {
    poll(LIMIT, || listening_ports(pid).into_iter().next())
        .unwrap_or_else(|| panic!("process {pid} listens on no TCP port"))
}

/// The ports of the TCP sockets in state LISTEN that process `pid` holds.
fn listening_ports(pid: u32) -> Vec<u16> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        // sl local_address rem_address st … inode: a listener is in state 0A.
        for fields in text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
        {
            let (Some(local), Some(&"0A"), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            if inodes.contains(*inode) {
                let port = local
                    .rsplit(':')
                    .next()
                    .and_then(|hex| u16::from_str_radix(hex, 16).ok());
                ports.extend(port);
            }
        }
    }
    ports
}

/// A port on 127.0.0.1 that refuses connections (a reset answers them): bound, never listening,
/// so no other program can take it while the test holds it.
pub struct ClosedPort {
    socket: Socket,
}

impl ClosedPort {
    /// Binds a socket to 127.0.0.1:0 without listening.
    pub fn hold() -> ClosedPort {
        ClosedPort::hold_at(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind 127.0.0.1:0")
    }

    /// Binds a socket to `addr` without listening; None when the address is taken or missing.
    pub fn hold_at(addr: SocketAddr) -> Option<ClosedPort> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).ok()?;
        socket.bind(&addr.into()).ok()?;
        Some(ClosedPort { socket })
    }

    /// Its port number.
    pub fn port(&self) -> u16 {
        self.socket
            .local_addr()
            .ok()
            .and_then(|addr| addr.as_socket())
            .expect("a bound address")
            .port()
    }
}

/// A listener on 127.0.0.1 and the same port held closed on [::1], as a host whose AAAA is dead
/// and whose A is live; None without an IPv6 loopback.
pub fn live_v4_dead_v6() -> Option<(TcpListener, ClosedPort)> {
    for _ in 0..20 {
        let v6 = ClosedPort::hold_at("[::1]:0".parse().ok()?)?;
        if let Ok(v4) = TcpListener::bind(("127.0.0.1", v6.port())) {
            return Some((v4, v6));
        }
    }
    panic!("no port free on both [::1] and 127.0.0.1 in 20 tries");
}

/// Listeners on the same port on [::1] and on 127.0.0.1, as a service reachable by both of
/// localhost's addresses; None without an IPv6 loopback. A port taken on 127.0.0.1 by someone
/// else is given up and another one tried (a bounded number of times).
pub fn dual_stack_listeners() -> Option<(TcpListener, TcpListener)> {
    for _ in 0..20 {
        let v6 = TcpListener::bind("[::1]:0").ok()?;
        let port = v6.local_addr().ok()?.port();
        if let Ok(v4) = TcpListener::bind(("127.0.0.1", port)) {
            return Some((v6, v4));
        }
    }
    panic!("no port free on both [::1] and 127.0.0.1 in 20 tries");
}
