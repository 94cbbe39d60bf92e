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
    /// TCP internals, when asked for and the OS gives them (Linux).
    pub tcp_info: Option<Box<TcpInfo>>,
}

/// A TCP socket's internals, from the kernel's `struct tcp_info`: its field names (without the
/// `tcpi_` prefix) and units, the unit added to a name where the kernel's does not say it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TcpInfo {
    /// Smoothed round-trip time, microseconds (`tcpi_rtt`).
    pub rtt_us: u32,
    /// Its mean deviation, microseconds (`tcpi_rttvar`).
    pub rttvar_us: u32,
    /// The smallest round-trip time seen, microseconds (`tcpi_min_rtt`).
    pub min_rtt_us: u32,
    /// The retransmission timeout, microseconds (`tcpi_rto`).
    pub rto_us: u32,
    /// Congestion window, segments (`tcpi_snd_cwnd`).
    pub snd_cwnd: u32,
    /// Sender's maximum segment size, bytes (`tcpi_snd_mss`).
    pub snd_mss: u32,
    /// Retransmissions of the current segment, not yet acknowledged (`tcpi_retransmits`).
    pub retransmits: u8,
    /// Segments retransmitted over the connection's life (`tcpi_total_retrans`).
    pub total_retrans: u32,
    /// Segments sent and not yet acknowledged (`tcpi_unacked`).
    pub unacked: u32,
    /// Segments thought lost (`tcpi_lost`).
    pub lost: u32,
    /// Bytes written by the application and not yet sent (`tcpi_notsent_bytes`).
    pub notsent_bytes: u32,
    /// Data bytes sent, retransmissions included (`tcpi_bytes_sent`).
    pub bytes_sent: u64,
    /// Data bytes retransmitted (`tcpi_bytes_retrans`).
    pub bytes_retrans: u64,
    /// Data bytes the peer acknowledged (`tcpi_bytes_acked`).
    pub bytes_acked: u64,
    /// Data bytes received (`tcpi_bytes_received`).
    pub bytes_received: u64,
    /// The latest delivery rate measured, bytes per second (`tcpi_delivery_rate`).
    pub delivery_rate: u64,
    /// Time since data was last sent, milliseconds (`tcpi_last_data_sent`).
    pub last_data_sent_ms: u32,
    /// Time since data was last received, milliseconds (`tcpi_last_data_recv`).
    pub last_data_recv_ms: u32,
    /// Time since an acknowledgement was last received, milliseconds (`tcpi_last_ack_recv`).
    pub last_ack_recv_ms: u32,
}
