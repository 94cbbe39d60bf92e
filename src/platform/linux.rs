//! Linux: sockets from one netlink sock_diag dump per family and protocol (queues, UDP peers, uid and
//! inode included, state filtered in the kernel); owners are found in `fd_walk`.

use std::io;
use std::ops::RangeInclusive;

use netlink_packet_core::{
    Emitable, ErrorBuffer, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer,
    NetlinkHeader, NetlinkMessage, NlasIterator, Parseable,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{
        AF_INET, AF_INET6, AF_UNSPEC, INET_DIAG_INFO, IPPROTO_TCP, IPPROTO_UDP, SOCK_DIAG_BY_FAMILY,
    },
    inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags, nlas},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};

use super::Selection;
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
    // Both families' TCP sockets come from one walk of the kernel's tables (see `request_bytes`).
    let tcp = |dump: &Dump| dump.protocol == IPPROTO_TCP;
    if dumps.iter().filter(|dump| tcp(dump)).count() == 2
        && let Some(first) = dumps.iter().position(tcp)
    {
        dumps[first].family = AF_UNSPEC;
        let mut seen = 0;
        dumps.retain(|dump| {
            seen += usize::from(tcp(dump));
            !tcp(dump) || seen == 1
        });
    }
    dumps
}

/// The kernel's message type of the older inet_diag request (`TCPDIAG_GETSOCK`), and the length
/// of its body (`struct inet_diag_req`: family, two lengths, extensions, the 48-byte socket id,
/// states, and an unused `idiag_dbs`).
const TCPDIAG_GETSOCK: u16 = 18;
const INET_DIAG_REQ_LEN: usize = 60;

/// The request for `dump`. A TCP dump of both families uses the older request, which the kernel
/// answers with one walk of its socket tables for both (AF_UNSPEC); the newer one, family by
/// family, walks them all once per family.
fn request_bytes(dump: Dump) -> Vec<u8> {
    let extensions = if dump.info {
        ExtensionFlags::INFO
    } else {
        ExtensionFlags::empty()
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    if dump.family == AF_UNSPEC {
        let length = header.buffer_len() + INET_DIAG_REQ_LEN;
        header.length = length as u32;
        header.message_type = TCPDIAG_GETSOCK;
        let mut bytes = vec![0; length];
        header.emit(&mut bytes);
        let body = &mut bytes[header.buffer_len()..];
        body[3] = extensions.bits();
        SocketId::new_v4().emit(&mut body[4..52]);
        body[52..56].copy_from_slice(&dump.states.to_ne_bytes());
        return bytes;
    }
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
            extensions,
            states: StateFlags::from_bits_retain(dump.states),
            socket_id,
        })
        .into(),
    );
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    bytes
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
    let socket = start(dump)?;
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

/// A netlink socket that `dump` was asked for on.
fn start(dump: Dump) -> Result<Socket> {
    let fail = failure(dump);
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(&fail)?;
    socket.bind_auto().map_err(&fail)?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(&fail)?;
    socket.send(&request_bytes(dump), 0).map_err(&fail)?;
    Ok(socket)
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
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                let payload = message.payload();
                let header = InetResponseHeader::parse(payload).map_err(invalid)?;
                let mut socket = convert(proto, &header);
                if dump.info {
                    socket.tcp_info = payload
                        .get(header.buffer_len()..)
                        .and_then(tcp_info_of)
                        .map(Box::new);
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
    if family == AF_UNSPEC {
        return "TCP";
    }
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

    fn selection(ipv4: bool, ipv6: bool) -> Selection {
        Selection {
            tcp: true,
            udp: true,
            ipv4,
            ipv6,
            tcp_states: vec![TcpState::Listen, TcpState::Established],
            udp_connected: None,
            tcp_info: false,
        }
    }

    #[test]
    fn tcp_of_both_families_is_one_dump_and_lists_both() {
        let families = |dumps: Vec<Dump>| -> Vec<(u8, u8)> {
            dumps.iter().map(|d| (d.family, d.protocol)).collect()
        };
        assert_eq!(
            families(plan(&selection(true, true))),
            [
                (AF_UNSPEC, IPPROTO_TCP),
                (AF_INET, IPPROTO_UDP),
                (AF_INET6, IPPROTO_UDP)
            ]
        );
        assert_eq!(
            families(plan(&selection(false, true))),
            [(AF_INET6, IPPROTO_TCP), (AF_INET6, IPPROTO_UDP)]
        );
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let mut seen = Vec::new();
        for_each_socket(&selection(true, true), &mut |socket| {
            seen.push((socket.proto, socket.local_addr, socket.local_port));
        })
        .unwrap();
        for listener in [v4, v6] {
            let address = listener.local_addr().unwrap();
            assert!(
                seen.contains(&(Proto::Tcp, address.ip(), address.port())),
                "{address} not listed"
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
