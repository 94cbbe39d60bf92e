//! Turns socket rows into table cells and watch-mode headers. Pure: no I/O here.

use std::collections::BTreeMap;

use super::model::{Proto, SocketRow};
use crate::output::Table;

/// How a row changed since the previous watch frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Same,
    Appeared,
    Closed,
}

impl Change {
    fn mark(self) -> &'static str {
        match self {
            Change::Same => " ",
            Change::Appeared => "+",
            Change::Closed => "-",
        }
    }
}

/// The table of `soquete sockets`: netstat's columns, then Class and Service.
/// `changes`, when given (watch mode), adds a first column with `+`/`-` marks.
pub fn socket_table(rows: &[SocketRow], show_owners: bool, changes: Option<&[Change]>) -> Table {
    let mut header: Vec<String> = Vec::new();
    if changes.is_some() {
        header.push(" ".into());
    }
    header.extend(
        [
            "Proto",
            "Recv-Q",
            "Send-Q",
            "Local Address",
            "Foreign Address",
            "State",
        ]
        .map(String::from),
    );
    if show_owners {
        header.push("PID/Program".into());
    }
    header.extend(["Class", "Service"].map(String::from));

    let rows = rows
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let mut cells = Vec::with_capacity(header.len());
            if let Some(changes) = changes {
                cells.push(
                    changes
                        .get(index)
                        .copied()
                        .unwrap_or(Change::Same)
                        .mark()
                        .into(),
                );
            }
            cells.push(proto_label(row).into());
            cells.push(queue(row.recv_q));
            cells.push(queue(row.send_q));
            cells.push(row.local_endpoint());
            cells.push(row.remote_endpoint());
            cells.push(row.state.map_or("-", |s| s.netstat_name()).into());
            if show_owners {
                cells.push(owners(row));
            }
            cells.push(row.class.name().into());
            cells.push(row.service.clone().unwrap_or_else(|| "-".into()));
            cells
        })
        .collect();
    Table { header, rows }
}

/// netstat's protocol label: `tcp`, `tcp6`, `udp`, `udp6`.
fn proto_label(row: &SocketRow) -> &'static str {
    match (row.proto, row.local_addr.is_ipv6()) {
        (Proto::Tcp, false) => "tcp",
        (Proto::Tcp, true) => "tcp6",
        (Proto::Udp, false) => "udp",
        (Proto::Udp, true) => "udp6",
    }
}

fn queue(value: Option<u32>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

/// `PID/program` pairs, comma-separated; `-` when unknown or none.
fn owners(row: &SocketRow) -> String {
    let (Some(pids), Some(programs)) = (&row.pids, &row.programs) else {
        return "-".into();
    };
    if pids.is_empty() {
        return "-".into();
    }
    pids.iter()
        .zip(programs)
        .map(|(pid, program)| format!("{pid}/{program}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Counts by state for the watch header: `ESTABLISHED 3  LISTEN 2  UDP 1`.
pub fn state_counts(rows: &[SocketRow]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for row in rows {
        *counts
            .entry(row.state.map_or("UDP", |s| s.netstat_name()))
            .or_default() += 1;
    }
    counts
        .iter()
        .map(|(state, count)| format!("{state} {count}"))
        .collect::<Vec<_>>()
        .join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::model::{PortClass, TcpState};

    fn row(proto: Proto, state: Option<TcpState>) -> SocketRow {
        SocketRow {
            proto,
            family: "ipv6",
            local_addr: "::1".parse().unwrap(),
            local_port: 22,
            remote_addr: None,
            remote_port: None,
            state,
            recv_q: None,
            send_q: Some(128),
            pids: Some(vec![10, 11]),
            programs: Some(vec!["sshd".into(), "sshd".into()]),
            class: PortClass::WellKnown,
            service_port: 22,
            service: Some("ssh".into()),
            ephemeral: Some(false),
            uid: Some(0),
            inode: Some(5),
        }
    }

    #[test]
    fn rows_read_like_netstat() {
        let table = socket_table(&[row(Proto::Tcp, Some(TcpState::Listen))], true, None);
        assert_eq!(
            table.header,
            [
                "Proto",
                "Recv-Q",
                "Send-Q",
                "Local Address",
                "Foreign Address",
                "State",
                "PID/Program",
                "Class",
                "Service"
            ]
        );
        assert_eq!(
            table.rows[0],
            [
                "tcp6",
                "-",
                "128",
                "[::1]:22",
                "[::]:*",
                "LISTEN",
                "10/sshd,11/sshd",
                "well-known",
                "ssh"
            ]
        );
    }

    #[test]
    fn udp_has_a_dash_for_state_and_no_owner_column_without_p() {
        let table = socket_table(&[row(Proto::Udp, None)], false, None);
        assert_eq!(table.rows[0][5], "-");
        assert!(!table.header.contains(&"PID/Program".to_string()));
    }

    #[test]
    fn watch_marks_come_first() {
        let rows = [row(Proto::Udp, None), row(Proto::Udp, None)];
        let table = socket_table(&rows, false, Some(&[Change::Appeared, Change::Closed]));
        assert_eq!(table.rows[0][0], "+");
        assert_eq!(table.rows[1][0], "-");
    }

    #[test]
    fn counts_group_by_state() {
        let rows = [
            row(Proto::Tcp, Some(TcpState::Listen)),
            row(Proto::Tcp, Some(TcpState::Listen)),
            row(Proto::Udp, None),
        ];
        assert_eq!(state_counts(&rows), "LISTEN 2  UDP 1");
    }
}
