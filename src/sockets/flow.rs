//! TCP internals as a sysadmin reads them (`-i`): compact table cells from `tcp_info`, and in
//! `--watch` each connection's throughput since the previous frame and whether it is stuck.
//! Pure: no I/O here.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use super::model::{Identity, SocketRow, TcpInfo, TcpState};

/// The headers of the `-i` columns, in order.
/// Units go in the header, as ms and s do: Sent and Recv count bytes, Rate is bytes per second
/// (ss prints bits per second: `B/s` says which).
pub const INFO_HEADERS: [&str; 7] = [
    "RTT ms", "Cwnd", "Retr", "Sent", "Recv", "Rate B/s", "Idle s",
];

/// The headers `--watch -i` adds: throughput in and out since the previous frame, and the mark.
pub const FLOW_HEADERS: [&str; 3] = ["In B/s", "Out B/s", "Flow"];

/// The word on a stuck connection's row.
pub const STUCK: &str = "stuck";

/// The `-i` cells of one row, `-` for each where there is no `tcp_info`.
pub fn info_cells(info: Option<&TcpInfo>) -> [InfoCell; 7] {
    let Some(info) = info else {
        return [InfoCell::None; 7];
    };
    [
        InfoCell::Rtt(info.rtt_us, info.rttvar_us),
        InfoCell::Count(u64::from(info.snd_cwnd)),
        InfoCell::Retrans(info.retransmits, info.total_retrans),
        InfoCell::Bytes(info.bytes_sent),
        InfoCell::Bytes(info.bytes_received),
        InfoCell::Rate(Some(info.delivery_rate as f64)),
        InfoCell::Idle(info.last_data_sent_ms, info.last_data_recv_ms),
    ]
}

/// One compact cell of TCP internals, formatted without allocating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InfoCell {
    /// Nothing known: `-`.
    None,
    /// Round-trip time and its deviation in µs, shown in ms: `0.05/0.02`.
    Rtt(u32, u32),
    /// A plain count.
    Count(u64),
    /// Retransmissions now / over the connection's life: `0/3`.
    Retrans(u8, u32),
    /// Bytes, in binary units: `512`, `1.5K`, `12.0M`.
    Bytes(u64),
    /// Bytes per second (the unit is in the header), `-` when unknown: `1.5M`.
    Rate(Option<f64>),
    /// Seconds since data was last sent / received: `0.1/12.3`.
    Idle(u32, u32),
}

impl fmt::Display for InfoCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InfoCell::None | InfoCell::Rate(None) => f.write_str("-"),
            InfoCell::Rtt(rtt, var) => {
                write!(f, "{:.2}/{:.2}", f64::from(rtt) / 1e3, f64::from(var) / 1e3)
            }
            InfoCell::Count(count) => write!(f, "{count}"),
            InfoCell::Retrans(now, total) => write!(f, "{now}/{total}"),
            InfoCell::Bytes(bytes) => write_bytes(f, bytes as f64),
            InfoCell::Rate(Some(rate)) => write_bytes(f, rate),
            InfoCell::Idle(sent, received) => write!(
                f,
                "{:.1}/{:.1}",
                f64::from(sent) / 1e3,
                f64::from(received) / 1e3
            ),
        }
    }
}

fn write_bytes(f: &mut fmt::Formatter<'_>, bytes: f64) -> fmt::Result {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if bytes < 1024.0 {
        return write!(f, "{bytes:.0}");
    }
    let mut value = bytes / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    write!(f, "{value:.1}{}", UNITS[unit])
}

/// One connection between two watch frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flow {
    /// Bytes received per second since the previous frame; None on a connection's first frame.
    pub in_per_sec: Option<f64>,
    /// Bytes the peer acknowledged per second since the previous frame; None as `in_per_sec`.
    pub out_per_sec: Option<f64>,
    /// Data waits to be sent (Send-Q) or is being retransmitted, and the peer acknowledged
    /// nothing since the previous frame.
    pub stuck: bool,
}

impl Flow {
    /// The cells `--watch -i` adds to a row: in, out, and `stuck` or nothing.
    pub fn cells(flow: Option<&Flow>) -> [FlowCell; 3] {
        match flow {
            None => [
                FlowCell::Rate(None),
                FlowCell::Rate(None),
                FlowCell::Mark(false),
            ],
            Some(flow) => [
                FlowCell::Rate(flow.in_per_sec),
                FlowCell::Rate(flow.out_per_sec),
                FlowCell::Mark(flow.stuck),
            ],
        }
    }
}

/// A cell of the `--watch -i` columns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlowCell {
    /// A rate, `-` when unknown.
    Rate(Option<f64>),
    /// `stuck`, or empty.
    Mark(bool),
}

impl fmt::Display for FlowCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FlowCell::Rate(rate) => InfoCell::Rate(rate).fmt(f),
            FlowCell::Mark(true) => f.write_str(STUCK),
            FlowCell::Mark(false) => Ok(()),
        }
    }
}

/// Each current row's flow since the previous frame, `elapsed` ago: None for a row without TCP
/// internals; rates unknown for a connection not in the previous frame.
pub fn flows(
    previous: &[SocketRow],
    current: &[SocketRow],
    elapsed: Duration,
) -> Vec<Option<Flow>> {
    let before: HashMap<Identity, (&TcpInfo, Option<u32>)> = previous
        .iter()
        .filter_map(|row| Some((row.identity(), (row.tcp_info.as_deref()?, row.send_q))))
        .collect();
    let seconds = elapsed.as_secs_f64().max(1e-3);
    current
        .iter()
        .map(|row| {
            let now = row.tcp_info.as_deref()?;
            let Some(&(then, send_q_then)) = before.get(&row.identity()) else {
                return Some(Flow {
                    in_per_sec: None,
                    out_per_sec: None,
                    stuck: false,
                });
            };
            let acked = now.bytes_acked.saturating_sub(then.bytes_acked);
            let received = now.bytes_received.saturating_sub(then.bytes_received);
            let waiting = row.send_q.unwrap_or(0) > 0 && send_q_then.unwrap_or(0) > 0;
            let retransmitting = now.total_retrans > then.total_retrans || now.retransmits > 0;
            // A listener's Send-Q is its backlog limit: it never has data to send.
            let stuck =
                row.state != Some(TcpState::Listen) && acked == 0 && (waiting || retransmitting);
            Some(Flow {
                in_per_sec: Some(received as f64 / seconds),
                out_per_sec: Some(acked as f64 / seconds),
                stuck,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::model::Proto;

    fn connection(send_q: u32, acked: u64, received: u64, total_retrans: u32) -> SocketRow {
        SocketRow {
            state: Some(TcpState::Established),
            remote_addr: Some("127.0.0.1".parse().unwrap()),
            remote_port: Some(9),
            send_q: Some(send_q),
            tcp_info: Some(Box::new(TcpInfo {
                bytes_acked: acked,
                bytes_received: received,
                total_retrans,
                ..TcpInfo::default()
            })),
            ..SocketRow::listener(Proto::Tcp, 5)
        }
    }

    #[test]
    fn throughput_is_the_difference_over_the_time_between_frames() {
        let before = [connection(0, 1000, 0, 0)];
        let after = [connection(0, 3000, 4096, 0)];
        let flow = flows(&before, &after, Duration::from_secs(2))[0].unwrap();
        assert_eq!(flow.out_per_sec, Some(1000.0));
        assert_eq!(flow.in_per_sec, Some(2048.0));
        assert!(!flow.stuck);
        assert_eq!(Flow::cells(Some(&flow))[1].to_string(), "1000");
        assert_eq!(Flow::cells(Some(&flow))[0].to_string(), "2.0K");
        assert_eq!(
            FLOW_HEADERS[..2],
            ["In B/s", "Out B/s"],
            "the unit in the header"
        );
    }

    #[test]
    fn data_waiting_with_no_acknowledgement_is_stuck_and_idle_is_not() {
        let waiting = [connection(5000, 1000, 0, 0)];
        assert!(
            flows(&waiting, &waiting, Duration::from_secs(1))[0]
                .unwrap()
                .stuck
        );
        let idle = [connection(0, 1000, 0, 0)];
        assert!(
            !flows(&idle, &idle, Duration::from_secs(1))[0]
                .unwrap()
                .stuck
        );
        let retrying = [connection(0, 1000, 0, 1)];
        let stuck = flows(&idle, &retrying, Duration::from_secs(1))[0]
            .unwrap()
            .stuck;
        assert!(stuck, "retransmits rising, nothing acknowledged");
        let draining = [connection(4000, 2000, 0, 0)];
        assert!(
            !flows(&waiting, &draining, Duration::from_secs(1))[0]
                .unwrap()
                .stuck
        );
        let listener = SocketRow {
            send_q: Some(128),
            tcp_info: Some(Box::default()),
            ..SocketRow::listener(Proto::Tcp, 5)
        };
        let listeners = [listener];
        assert!(
            !flows(&listeners, &listeners, Duration::from_secs(1))[0]
                .unwrap()
                .stuck
        );
    }

    #[test]
    fn a_new_connection_has_no_rates_yet_and_udp_no_flow() {
        let flow = flows(&[], &[connection(0, 1, 1, 0)], Duration::from_secs(1));
        assert_eq!(flow[0].unwrap().in_per_sec, None);
        assert_eq!(Flow::cells(flow[0].as_ref())[0].to_string(), "-");
        assert_eq!(
            flows(&[], &[SocketRow::listener(Proto::Udp, 5)], Duration::ZERO),
            [None]
        );
    }

    #[test]
    fn info_cells_are_compact() {
        let info = TcpInfo {
            rtt_us: 1500,
            rttvar_us: 250,
            snd_cwnd: 10,
            retransmits: 1,
            total_retrans: 4,
            bytes_sent: 3 * 1024 * 1024 / 2,
            bytes_received: 512,
            delivery_rate: 2048,
            last_data_sent_ms: 100,
            last_data_recv_ms: 12300,
            ..TcpInfo::default()
        };
        let cells: Vec<String> = info_cells(Some(&info))
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            cells,
            ["1.50/0.25", "10", "1/4", "1.5M", "512", "2.0K", "0.1/12.3"]
        );
        assert_eq!(INFO_HEADERS[5], "Rate B/s", "bytes, not bits as ss prints");
        assert!(info_cells(None).iter().all(|c| c.to_string() == "-"));
    }
}
