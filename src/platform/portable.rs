//! The netstat2 backend: how macOS and Windows enumerate sockets. Built on every OS so that Linux
//! tests exercise it. netstat2 gives no queue figures, no UDP peers, no uid and no TCP internals:
//! those stay None.

use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo, SocketInfo};

use super::Selection;
use crate::error::{Error, Result};
use crate::net::socket::{Proto, RawSocket, TcpState};

/// Hands every socket to `sink`, through netstat2, with owning PIDs and the selection's TCP states.
pub fn for_each_socket(selection: &Selection, sink: &mut dyn FnMut(RawSocket)) -> Result<()> {
    let mut families = AddressFamilyFlags::empty();
    if selection.ipv4 {
        families |= AddressFamilyFlags::IPV4;
    }
    if selection.ipv6 {
        families |= AddressFamilyFlags::IPV6;
    }
    let mut protocols = ProtocolFlags::empty();
    if selection.tcp {
        protocols |= ProtocolFlags::TCP;
    }
    if selection.udp {
        protocols |= ProtocolFlags::UDP;
    }
    if families.is_empty() || protocols.is_empty() {
        return Ok(());
    }
    let sockets = netstat2::get_sockets_info(families, protocols)
        .map_err(|err| Error::Unsupported(format!("listing sockets (netstat2): {err}")))?;
    sockets
        .into_iter()
        .filter_map(convert)
        .filter(|socket| match socket.proto {
            Proto::Tcp => socket
                .state
                .is_some_and(|s| selection.tcp_states.contains(&s)),
            // netstat2 does not tell a connected UDP socket from an unconnected one: keep them all.
            Proto::Udp => true,
        })
        .for_each(sink);
    Ok(())
}

fn convert(info: SocketInfo) -> Option<RawSocket> {
    #[cfg(target_os = "linux")]
    let (uid, inode) = (
        Some(info.uid),
        (info.inode != 0).then_some(u64::from(info.inode)),
    );
    #[cfg(not(target_os = "linux"))]
    let (uid, inode) = (None, None);
    let socket = match info.protocol_socket_info {
        ProtocolSocketInfo::Tcp(tcp) => RawSocket {
            proto: Proto::Tcp,
            local_addr: tcp.local_addr,
            local_port: tcp.local_port,
            remote: (tcp.remote_port != 0 || !tcp.remote_addr.is_unspecified())
                .then_some((tcp.remote_addr, tcp.remote_port)),
            state: Some(convert_state(tcp.state)?),
            recv_q: None,
            send_q: None,
            uid,
            inode,
            pids: Some(info.associated_pids),
            tcp_info: None,
        },
        ProtocolSocketInfo::Udp(udp) => RawSocket {
            proto: Proto::Udp,
            local_addr: udp.local_addr,
            local_port: udp.local_port,
            remote: None,
            state: None,
            recv_q: None,
            send_q: None,
            uid,
            inode,
            pids: Some(info.associated_pids),
            tcp_info: None,
        },
    };
    Some(socket)
}

fn convert_state(state: netstat2::TcpState) -> Option<TcpState> {
    use netstat2::TcpState as N;
    Some(match state {
        N::Closed => TcpState::Close,
        N::Listen => TcpState::Listen,
        N::SynSent => TcpState::SynSent,
        N::SynReceived => TcpState::SynRecv,
        N::Established => TcpState::Established,
        N::FinWait1 => TcpState::FinWait1,
        N::FinWait2 => TcpState::FinWait2,
        N::CloseWait => TcpState::CloseWait,
        N::Closing => TcpState::Closing,
        N::LastAck => TcpState::LastAck,
        N::TimeWait => TcpState::TimeWait,
        // Windows' DELETE_TCB is a connection being torn down.
        N::DeleteTcb => TcpState::Close,
        N::Unknown => return None,
    })
}
