//! The OS-neutral socket model: what every OS backend in `platform/` produces and what the
//! `sockets` feature explains. Crate types (netstat2, netlink) are converted into these at the edge.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Connection state, as the kernel reports it: one of TCP's states, or for UDP `Established`
/// (connected to a peer) or `Unconnected` (as ss says; the kernel's TCP_CLOSE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpState {
    /// Connected: data flows both ways.
    Established,
    /// A connect sent its SYN and waits for the answer.
    SynSent,
    /// A SYN came in and was answered; the handshake's last ACK is awaited.
    SynRecv,
    /// This end closed and waits for the peer to acknowledge its FIN.
    FinWait1,
    /// This end's FIN was acknowledged; the peer may still send.
    FinWait2,
    /// Both ends closed; kept a while so late segments of the connection are not misread.
    TimeWait,
    /// Closed.
    Close,
    /// The peer closed; this end has not closed yet.
    CloseWait,
    /// The peer closed, then this end; its FIN awaits acknowledgement.
    LastAck,
    /// Waiting for connections.
    Listen,
    /// Both ends closed at once; each waits for the other's acknowledgement.
    Closing,
    /// A UDP socket without a peer (not a TCP state: not in [`TcpState::ALL`]).
    Unconnected,
}

impl TcpState {
    /// Every TCP state, in the kernel's numbering order.
    pub const ALL: [TcpState; 11] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
    ];

    /// The name netstat prints.
    pub fn netstat_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::Unconnected => "UNCONN",
        }
    }

    /// The kebab-case name the `--state` filter takes.
    pub fn filter_name(self) -> &'static str {
        match self {
            TcpState::Established => "established",
            TcpState::SynSent => "syn-sent",
            TcpState::SynRecv => "syn-recv",
            TcpState::FinWait1 => "fin-wait-1",
            TcpState::FinWait2 => "fin-wait-2",
            TcpState::TimeWait => "time-wait",
            TcpState::Close => "close",
            TcpState::CloseWait => "close-wait",
            TcpState::LastAck => "last-ack",
            TcpState::Listen => "listen",
            TcpState::Closing => "closing",
            TcpState::Unconnected => "unconnected",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.netstat_name())
    }
}

/// One socket as an OS backend reports it, before soquete adds owners and explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSocket {
    /// Transport protocol.
    pub proto: Proto,
    /// The local address.
    pub local_addr: IpAddr,
    /// The local port.
    pub local_port: u16,
    /// None when the socket has no peer (a listener, an unconnected UDP socket).
    pub remote: Option<(IpAddr, u16)>,
    /// TCP's state; for UDP, established or unconnected; None where the backend cannot tell.
    pub state: Option<TcpState>,
    /// Receive queue, the kernel's figure; None where the OS does not give it.
    pub recv_q: Option<u32>,
    /// Send queue, as `recv_q`.
    pub send_q: Option<u32>,
    /// The owning user id, where the backend gives it.
    pub uid: Option<u32>,
    /// The socket's inode (Linux); 0 from the kernel means "no inode" and is stored as None.
    pub inode: Option<u64>,
    /// Owning PIDs when the backend already knows them (netstat2 on macOS and Windows).
    pub pids: Option<Vec<u32>>,
}
