//! Turns socket rows into table cells and watch-mode headers. Pure: no I/O here. Text the OS
//! hands over (program names, service names) is neutralised: an escape sequence or a newline in
//! a process name must not reach the terminal or split a row.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;

use super::collect::Request;
use super::flow::{self, Flow};
use super::model::{Proto, SocketRow};
use super::query::Query;
use crate::net::sanitize::neutralize;
use crate::output::Table;

/// How a row changed since the previous watch frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// There before and still there.
    Same,
    /// New since the previous frame.
    Appeared,
    /// Gone since the previous frame (shown once more, marked).
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

/// Which columns a table has besides netstat's, Class and Service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Columns<'a> {
    /// PID/Program (`-p`).
    pub owners: bool,
    /// User (uid) and Inode (`-e`), as netstat -e, before PID/Program.
    pub extended: bool,
    /// TCP internals (`-i`).
    pub info: bool,
    /// Watch mode: a first column with `+`/`-` marks, one per row.
    pub changes: Option<&'a [Change]>,
    /// Watch mode with `-i`: throughput and `stuck` (a last column), one per row; rows beyond
    /// (those that closed) have none.
    pub flows: Option<&'a [Option<Flow>]>,
}

impl Columns<'_> {
    /// The columns `query` asks for (without watch mode's).
    pub fn of(query: &Query, request: &Request) -> Columns<'static> {
        Columns {
            owners: request.show_owners,
            extended: query.extended,
            info: query.info,
            ..Columns::default()
        }
    }
}

/// The table of `soquete sockets`: netstat's columns, then Class and Service, with the extra
/// `columns`.
pub fn socket_table<R: Borrow<SocketRow>>(rows: &[R], columns: &Columns) -> Table {
    let mut table = empty_socket_table(columns);
    table.reserve(rows.len(), 96);
    for (index, row) in rows.iter().enumerate() {
        push_socket_row(&mut table, index, row.borrow(), columns);
    }
    table
}

/// Fills the PID/Program column of a table made (by [`push_socket_row`]) before `rows` had
/// their owners.
pub fn fill_owners(table: &mut Table, rows: &[SocketRow]) {
    use std::fmt::Write as _;
    let Some(column) = table.header().iter().position(|h| h == OWNERS) else {
        return;
    };
    // A busy process holds many sockets in a row: their cell is written once.
    let mut last: Option<&SocketRow> = None;
    let mut cell = String::new();
    table.replace_column(column, |index, text| {
        let Some(row) = rows.get(index) else {
            return text.push('-');
        };
        if !last.is_some_and(|last| last.pids == row.pids && last.programs == row.programs) {
            cell.clear();
            let _ = write!(cell, "{}", Owners(row));
            last = Some(row);
        }
        text.push_str(&cell);
    });
}

/// The table of [`socket_table`] without rows, for [`push_socket_row`] to fill as rows come.
pub fn empty_socket_table(columns: &Columns) -> Table {
    let mut header: Vec<&str> = Vec::new();
    if columns.changes.is_some() {
        header.push(" ");
    }
    header.extend([
        "Proto",
        "Recv-Q",
        "Send-Q",
        "Local Address",
        "Foreign Address",
        "State",
    ]);
    if columns.extended {
        header.extend(["User", "Inode"]);
    }
    if columns.owners {
        header.push(OWNERS);
    }
    if columns.info {
        header.extend(flow::INFO_HEADERS);
    }
    if columns.flows.is_some() {
        header.extend(&flow::FLOW_HEADERS[..2]);
    }
    header.extend(["Class", "Service"]);
    if columns.flows.is_some() {
        // Last, so that an empty cell leaves the columns before it in place.
        header.push(flow::FLOW_HEADERS[2]);
    }

    // As ss: one line per socket, its numbers and addresses whole; on a narrow terminal the
    // service's name and class, derived from the port shown beside them, go first.
    // In --watch -i, the `stuck` mark and the throughput matter more than the counters that
    // ss -i also prints: those go next.
    let mut expendable = vec!["Service", "Class"];
    if columns.flows.is_some() {
        expendable.extend(["Idle s", "Cwnd", "Sent", "Recv", "Rate B/s"]);
    }
    let expendable = expendable
        .iter()
        .filter_map(|name| header.iter().position(|h| h == name))
        .collect();
    let mut table = Table::new(header);
    table.one_line_per_row(expendable);
    table
}

/// Adds the cells of `row`, the `index`th row (watch mode's marks and flows are looked up by it),
/// to a table made by [`empty_socket_table`] with the same `columns`.
pub fn push_socket_row(table: &mut Table, index: usize, row: &SocketRow, columns: &Columns) {
    if let Some(changes) = columns.changes {
        table.cell(changes.get(index).copied().unwrap_or(Change::Same).mark());
    }
    let mut numbers = [itoa::Buffer::new(), itoa::Buffer::new()];
    let [recv_q, send_q] = &mut numbers;
    table
        .text(proto_label(row))
        .text(row.recv_q.map_or("-", |q| recv_q.format(q)))
        .text(row.send_q.map_or("-", |q| send_q.format(q)))
        .cell(row.local_endpoint())
        .cell(row.remote_endpoint())
        .text(row.state.map_or("-", |s| s.netstat_name()));
    if columns.extended {
        let [uid, inode] = &mut numbers;
        table
            .text(row.uid.map_or("-", |u| uid.format(u)))
            .text(row.inode.map_or("-", |i| inode.format(i)));
    }
    if columns.owners {
        table.cell(Owners(row));
    }
    if columns.info {
        for cell in flow::info_cells(row.tcp_info.as_deref()) {
            table.cell(cell);
        }
    }
    let flow_cells = columns
        .flows
        .map(|flows| Flow::cells(flows.get(index).and_then(Option::as_ref)));
    if let Some([in_cell, out_cell, _]) = flow_cells {
        table.cell(in_cell).cell(out_cell);
    }
    table
        .text(row.class.name())
        .text(row.service.unwrap_or("-"));
    if let Some([_, _, mark]) = flow_cells {
        table.cell(mark);
    }
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

/// The header of the owners' column.
const OWNERS: &str = "PID/Program";

/// `PID/program` pairs, comma-separated; `-` when unknown or none.
struct Owners<'a>(&'a SocketRow);

impl fmt::Display for Owners<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some(pids), Some(programs)) = (&self.0.pids, &self.0.programs) else {
            return f.write_str("-");
        };
        if pids.is_empty() {
            return f.write_str("-");
        }
        for (index, (pid, program)) in pids.iter().zip(programs).enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            f.write_str(itoa::Buffer::new().format(*pid))?;
            f.write_str("/")?;
            f.write_str(&neutralize(program))?;
        }
        Ok(())
    }
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
            service: Some("ssh"),
            ephemeral: Some(false),
            uid: Some(0),
            inode: Some(5),
            tcp_info: None,
        }
    }

    fn with_owners() -> Columns<'static> {
        Columns {
            owners: true,
            ..Columns::default()
        }
    }

    #[test]
    fn info_and_flow_columns_come_with_i_and_stuck_is_last() {
        let mut connection = row(Proto::Tcp, Some(TcpState::Established));
        connection.tcp_info = Some(Box::default());
        let flows = [Some(Flow {
            in_per_sec: Some(0.0),
            out_per_sec: Some(0.0),
            stuck: true,
        })];
        let columns = Columns {
            info: true,
            flows: Some(&flows),
            ..Columns::default()
        };
        let table = socket_table(&[connection], &columns);
        assert_eq!(table.header()[6], "RTT ms");
        assert_eq!(table.header().last().unwrap(), "Flow");
        let cells = table.rows().next().unwrap();
        assert_eq!(cells[6..8], ["0.00/0.00", "0"]);
        assert_eq!(cells.last().unwrap(), &"stuck");
        // On a narrow screen the counters go before the throughput and the mark.
        let text = crate::output::render_table(
            &table,
            crate::output::Style::Terminal { width: Some(100) },
        );
        assert!(text.contains("stuck") && text.contains("In B/s"), "{text}");
        assert!(
            !text.contains("Idle s") && !text.contains("Service"),
            "{text}"
        );
    }

    #[test]
    fn extended_adds_user_and_inode_before_the_owners_as_netstat_e() {
        let mut time_wait = row(Proto::Tcp, Some(TcpState::TimeWait));
        time_wait.inode = None;
        let columns = Columns {
            extended: true,
            ..with_owners()
        };
        let rows = [row(Proto::Tcp, Some(TcpState::Listen)), time_wait];
        let table = socket_table(&rows, &columns);
        assert_eq!(
            table.header()[5..9],
            ["State", "User", "Inode", "PID/Program"]
        );
        let cells: Vec<_> = table.rows().collect();
        assert_eq!(cells[0][6..8], ["0", "5"]);
        assert_eq!(cells[1][7], "-", "no inode in TIME_WAIT");
    }

    #[test]
    fn rows_read_like_netstat() {
        let table = socket_table(&[row(Proto::Tcp, Some(TcpState::Listen))], &with_owners());
        assert_eq!(
            table.header(),
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
            table.rows().next().unwrap(),
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
    fn owners_filled_in_after_the_other_cells_read_as_if_known_from_the_start() {
        let mut shared = row(Proto::Tcp, Some(TcpState::Listen));
        shared.programs = Some(vec!["sshd".into(), "x\u{1b}[2Jy".into()]);
        let mut unowned = row(Proto::Tcp, Some(TcpState::Established));
        (unowned.pids, unowned.programs) = (Some(Vec::new()), Some(Vec::new()));
        let rows = [shared.clone(), shared, unowned.clone(), unowned];
        let mut later = empty_socket_table(&with_owners());
        for (index, row) in rows.iter().enumerate() {
            let before_owners = SocketRow {
                pids: None,
                programs: None,
                ..row.clone()
            };
            push_socket_row(&mut later, index, &before_owners, &with_owners());
        }
        fill_owners(&mut later, &rows);
        assert_eq!(later, socket_table(&rows, &with_owners()));
        assert_eq!(later.rows().nth(1).unwrap()[6], "10/sshd,11/xy");
        assert_eq!(later.rows().nth(2).unwrap()[6], "-");
    }

    #[test]
    fn udp_has_a_dash_for_state_and_no_owner_column_without_p() {
        let table = socket_table(&[row(Proto::Udp, None)], &Columns::default());
        assert_eq!(table.rows().next().unwrap()[5], "-");
        assert!(!table.header().contains(&"PID/Program".to_string()));
    }

    #[test]
    fn watch_marks_come_first() {
        let rows = [row(Proto::Udp, None), row(Proto::Udp, None)];
        let columns = Columns {
            changes: Some(&[Change::Appeared, Change::Closed]),
            ..Columns::default()
        };
        let table = socket_table(&rows, &columns);
        let rows: Vec<_> = table.rows().collect();
        assert_eq!(rows[0][0], "+");
        assert_eq!(rows[1][0], "-");
    }

    #[test]
    fn program_names_cannot_reach_the_terminal_or_split_a_row() {
        let mut evil = row(Proto::Tcp, Some(TcpState::Listen));
        evil.pids = Some(vec![7]);
        evil.programs = Some(vec!["x\u{1b}]0;owned\u{7}\u{1b}[2Jy\nz".into()]);
        let table = socket_table(&[evil], &with_owners());
        assert_eq!(table.rows().next().unwrap()[6], "7/xy\u{fffd}z");
        let text = crate::output::render_table(&table, crate::output::Style::Plain);
        assert_eq!(text.lines().count(), 2, "{text:?}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
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
