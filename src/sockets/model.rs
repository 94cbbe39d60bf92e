//! soquete's own socket types: what the OS backends produce and what every renderer reads.
//! Crate types (netstat2, netlink) are converted into these at the edge, in `platform/`.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

pub use crate::net::socket::{Proto, RawSocket, TcpInfo, TcpState};

/// IANA port class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortClass {
    /// 0-1023, assigned by IANA to well-known services
    WellKnown,
    /// 1024-49151, registered with IANA by applications
    Registered,
    /// 49152-65535, free for private and temporary use
    Dynamic,
}

impl PortClass {
    /// The IANA class of `port`.
    pub fn of(port: u16) -> PortClass {
        match port {
            0..=1023 => PortClass::WellKnown,
            1024..=49151 => PortClass::Registered,
            _ => PortClass::Dynamic,
        }
    }

    /// The name shown in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            PortClass::WellKnown => "well-known",
            PortClass::Registered => "registered",
            PortClass::Dynamic => "dynamic",
        }
    }
}

/// One row of `soquete sockets`: a socket with its owners and explanations.
/// Its JSON form is the schema documented in the README, section "JSON schema (`--json`)";
/// fields are only ever added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocketRow {
    /// "tcp" or "udp".
    pub proto: Proto,
    /// "ipv4" or "ipv6".
    pub family: &'static str,
    /// The local address.
    pub local_addr: IpAddr,
    /// The local port.
    pub local_port: u16,
    /// null when the socket has no peer.
    pub remote_addr: Option<IpAddr>,
    /// The peer's port; null when the socket has no peer.
    pub remote_port: Option<u16>,
    /// TCP state in snake_case; for UDP `established` (connected) or `unconnected`; null where
    /// the OS does not tell (UDP on macOS and Windows).
    pub state: Option<TcpState>,
    /// Bytes in the receive queue (a listener: connections waiting for accept); null where the
    /// OS does not give it.
    pub recv_q: Option<u32>,
    /// Bytes in the send queue (a listener: its backlog limit); null where the OS does not give it.
    pub send_q: Option<u32>,
    /// null when owners were not looked up, or are hidden from this user.
    pub pids: Option<Vec<u32>>,
    /// Program names, one per PID; null as `pids` is.
    pub programs: Option<Vec<String>>,
    /// IANA class of the service port (see `service_port`).
    pub class: PortClass,
    /// The port that names the service: the local port of a listener, the service side of a connection.
    pub service_port: u16,
    /// The service name of `service_port`; null when unknown.
    pub service: Option<&'static str>,
    /// Whether the local port lies in the OS's ephemeral (client) port range; null if unknown.
    pub ephemeral: Option<bool>,
    /// The owning user id (Linux); null elsewhere.
    pub uid: Option<u32>,
    /// The socket's inode (Linux); null elsewhere, or for a socket no process holds.
    pub inode: Option<u64>,
    /// TCP internals (`-i`); null when not asked for, for UDP, for sockets the kernel keeps none
    /// of (TIME_WAIT, half-open), and where the OS does not give them (macOS, Windows).
    pub tcp_info: Option<Box<TcpInfo>>,
}

/// What tells one socket from another across two looks: protocol and both ends.
pub type Identity = (Proto, IpAddr, u16, Option<IpAddr>, Option<u16>);

impl SocketRow {
    /// This socket's [`Identity`].
    pub fn identity(&self) -> Identity {
        (
            self.proto,
            self.local_addr,
            self.local_port,
            self.remote_addr,
            self.remote_port,
        )
    }

    /// `IP:PORT` of the local end, IPv6 bracketed.
    pub fn local_endpoint(&self) -> Endpoint {
        Endpoint(self.local_addr, Some(self.local_port))
    }

    /// `IP:PORT` of the remote end, or `0.0.0.0:*` / `[::]:*` when there is no peer.
    pub fn remote_endpoint(&self) -> Endpoint {
        match self.remote_addr {
            Some(addr) => Endpoint(addr, self.remote_port),
            None if self.local_addr.is_ipv4() => Endpoint(IpAddr::from([0, 0, 0, 0]), None),
            None => Endpoint(IpAddr::from([0u16; 8]), None),
        }
    }
}

/// `IP:PORT` with IPv6 in brackets, `*` for no port; formatted without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint(pub IpAddr, pub Option<u16>);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // IPv4 endpoints are most of what a busy host lists: format them by hand into one
        // buffer, which is several times cheaper than the formatting machinery.
        if let IpAddr::V4(v4) = self.0 {
            let mut text = [0u8; 21];
            let mut length = 0;
            let mut push = |bytes: &[u8]| {
                text[length..length + bytes.len()].copy_from_slice(bytes);
                length += bytes.len();
            };
            let mut digits = itoa::Buffer::new();
            for (index, octet) in v4.octets().into_iter().enumerate() {
                if index > 0 {
                    push(b".");
                }
                push(digits.format(octet).as_bytes());
            }
            push(b":");
            match self.1 {
                Some(port) => push(digits.format(port).as_bytes()),
                None => push(b"*"),
            }
            return f.write_str(std::str::from_utf8(&text[..length]).map_err(|_| fmt::Error)?);
        }
        write!(f, "[{}]:", self.0)?;
        match self.1 {
            Some(port) => write!(f, "{port}"),
            None => f.write_str("*"),
        }
    }
}

/// Rows for tests elsewhere in the feature.
#[cfg(test)]
impl SocketRow {
    /// A listener on 127.0.0.1:`port` (UDP: an unconnected socket), with nothing looked up.
    pub(crate) fn listener(proto: Proto, port: u16) -> SocketRow {
        SocketRow {
            proto,
            family: "ipv4",
            local_addr: IpAddr::from([127, 0, 0, 1]),
            local_port: port,
            remote_addr: None,
            remote_port: None,
            state: (proto == Proto::Tcp).then_some(TcpState::Listen),
            recv_q: None,
            send_q: None,
            pids: None,
            programs: None,
            class: PortClass::of(port),
            service_port: port,
            service: None,
            ephemeral: None,
            uid: None,
            inode: None,
            tcp_info: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_classes_have_the_documented_bounds() {
        assert_eq!(PortClass::of(0), PortClass::WellKnown);
        assert_eq!(PortClass::of(1023), PortClass::WellKnown);
        assert_eq!(PortClass::of(1024), PortClass::Registered);
        assert_eq!(PortClass::of(49151), PortClass::Registered);
        assert_eq!(PortClass::of(49152), PortClass::Dynamic);
        assert_eq!(PortClass::of(65535), PortClass::Dynamic);
    }

    #[test]
    fn ipv6_endpoints_are_bracketed() {
        assert_eq!(
            Endpoint("::1".parse().unwrap(), Some(22)).to_string(),
            "[::1]:22"
        );
        assert_eq!(
            Endpoint("10.0.0.1".parse().unwrap(), Some(80)).to_string(),
            "10.0.0.1:80"
        );
        assert_eq!(Endpoint("::".parse().unwrap(), None).to_string(), "[::]:*");
    }
}
