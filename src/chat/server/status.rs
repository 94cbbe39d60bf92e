//! The console's `/status` table: the listening socket, then every accepted one, with its traffic
//! and queue depth. Plain rows in, a table out; the hub gathers the rows.

use chrono::{DateTime, FixedOffset};

use crate::output::Table;

/// The columns of `/status`.
const HEADER: [&str; 12] = [
    "state",
    "local",
    "peer",
    "name",
    "kind",
    "tls",
    "since",
    "msgs in",
    "msgs out",
    "bytes in",
    "bytes out",
    "queue",
];

/// One socket of `/status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `listen`, `member`, `new`, or a single-mode place (`served`, `queued #2`).
    pub state: String,
    pub local: String,
    pub peer: String,
    /// `-` while the client is not named.
    pub name: String,
    /// The client's kind, or for the listening socket the mode.
    pub kind: String,
    /// The TLS version (`TLSv1.3`), `-` for plain TCP; for the listening socket `on`,
    /// `optional` or `-`.
    pub tls: String,
    pub since: DateTime<FixedOffset>,
    /// None for the listening socket.
    pub traffic: Option<Traffic>,
}

/// What went through one connection, and what waits in its outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub msgs_in: u64,
    pub msgs_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Items in the outbox.
    pub queue: usize,
}

/// The `/status` table of these rows, in their order.
pub fn table(rows: &[Row]) -> Table {
    let rows = rows
        .iter()
        .map(|row| {
            let mut cells = vec![
                row.state.clone(),
                row.local.clone(),
                row.peer.clone(),
                row.name.clone(),
                row.kind.clone(),
                row.tls.clone(),
                row.since.format("%H:%M:%S").to_string(),
            ];
            match row.traffic {
                Some(traffic) => cells.extend([
                    traffic.msgs_in.to_string(),
                    traffic.msgs_out.to_string(),
                    traffic.bytes_in.to_string(),
                    traffic.bytes_out.to_string(),
                    traffic.queue.to_string(),
                ]),
                None => cells.extend(std::iter::repeat_n("-".to_string(), 5)),
            }
            cells
        })
        .collect();
    Table::from_rows(HEADER.iter().map(|h| (*h).to_string()).collect(), rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Style, render_table};

    #[test]
    fn the_listening_socket_has_no_traffic_and_a_client_has_its_counts() {
        let since = DateTime::parse_from_rfc3339("2024-05-01T09:08:07-03:00").unwrap();
        let listen = Row {
            state: "listen".into(),
            local: "127.0.0.1:65432".into(),
            peer: "*:*".into(),
            name: "server".into(),
            kind: "group".into(),
            tls: "on".into(),
            since,
            traffic: None,
        };
        let ana = Row {
            state: "member".into(),
            local: "127.0.0.1:65432".into(),
            peer: "127.0.0.1:50000".into(),
            name: "ana".into(),
            kind: "structured".into(),
            tls: "TLSv1.3".into(),
            since,
            traffic: Some(Traffic {
                msgs_in: 3,
                msgs_out: 4,
                bytes_in: 120,
                bytes_out: 512,
                queue: 0,
            }),
        };
        let text = render_table(&table(&[listen, ana]), Style::Plain);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0][..2], ["state", "local"]);
        assert_eq!(
            lines[1],
            [
                "listen",
                "127.0.0.1:65432",
                "*:*",
                "server",
                "group",
                "on",
                "09:08:07",
                "-",
                "-",
                "-",
                "-",
                "-"
            ]
        );
        assert_eq!(
            lines[2][3..],
            [
                "ana",
                "structured",
                "TLSv1.3",
                "09:08:07",
                "3",
                "4",
                "120",
                "512",
                "0"
            ]
        );
    }
}
