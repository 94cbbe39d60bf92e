//! The orders `soquete sockets` lists rows in: the natural order (protocol, family, endpoints) and
//! the `--sort` keys, each computed once per row as plain integers.

use std::net::IpAddr;

use super::model::SocketRow;

/// What rows are sorted by, besides the natural order that breaks ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Local port, then remote port.
    Port,
    /// First owning PID.
    Pid,
    /// TCP state.
    State,
    /// Protocol (tcp before udp), then IPv4 before IPv6.
    Proto,
    /// Receive queue, largest first.
    RecvQ,
    /// Send queue, largest first.
    SendQ,
}

fn address_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Protocol, family, local end, remote end: as plain integers, which compare fast.
type Natural = (u8, u128, u16, u128, Option<u16>);

/// The sort key of `row` for `key`: a group (unknowns last), a primary value, then the natural
/// order. Without a key: protocol, family, then local and remote endpoint.
fn sort_key(row: &SocketRow, key: Option<SortKey>) -> Key {
    let natural = (
        (row.proto as u8) << 1 | u8::from(row.local_addr.is_ipv6()),
        address_bits(row.local_addr),
        row.local_port,
        row.remote_addr.map_or(0, address_bits),
        row.remote_port,
    );
    // Queues sort largest first, unknown last.
    let largest_first = |queue: Option<u32>| {
        (
            u8::from(queue.is_none()),
            u64::from(u32::MAX - queue.unwrap_or(0)),
        )
    };
    let (group, primary) = match key {
        None | Some(SortKey::Proto) => (0, 0),
        // A socket without a peer (a listener) comes before the connections on its port.
        Some(SortKey::Port) => (
            0,
            u64::from(row.local_port) << 17 | row.remote_port.map_or(0, |p| u64::from(p) + 1),
        ),
        Some(SortKey::Pid) => {
            let first = row.pids.as_ref().and_then(|p| p.first().copied());
            (u8::from(first.is_none()), u64::from(first.unwrap_or(0)))
        }
        Some(SortKey::State) => (
            u8::from(row.state.is_none()),
            row.state.map_or(0, |s| s as u64),
        ),
        Some(SortKey::RecvQ) => largest_first(row.recv_q),
        Some(SortKey::SendQ) => largest_first(row.send_q),
    };
    (group, primary, natural)
}

/// The rows in `key` order, as references: rows are large, so only pointers move.
pub fn sorted(rows: &[SocketRow], key: Option<SortKey>) -> Vec<&SocketRow> {
    let mut order: Vec<&SocketRow> = rows.iter().collect();
    order.sort_by_cached_key(|row| sort_key(row, key));
    order
}

/// Indices of `rows` in `key` order.
pub fn sort_order(rows: &[SocketRow], key: Option<SortKey>) -> Vec<u32> {
    let mut order = Order::new(key);
    rows.iter().for_each(|row| order.push(row));
    order.finish()
}

/// Rows' sort keys, taken one row at a time as rows come (while the rest are still being
/// gathered), then the order of the rows pushed: [`sort_order`] in pieces.
pub struct Order {
    key: Option<SortKey>,
    keys: Vec<(Key, u32)>,
    /// Keys before this index are in order.
    sorted: usize,
}

type Key = (u8, u64, Natural);

impl Order {
    /// Keys are sorted in runs of this many as they come, each merged into those before: the
    /// end has only the last run left to sort and merge.
    const RUN: usize = 4096;

    /// No rows yet, to be put in `key` order.
    pub fn new(key: Option<SortKey>) -> Order {
        Order {
            key,
            keys: Vec::new(),
            sorted: 0,
        }
    }

    /// Takes the next row's key (rows are numbered as pushed, from 0).
    pub fn push(&mut self, row: &SocketRow) {
        let index = self.keys.len() as u32;
        self.keys.push((sort_key(row, self.key), index));
        if self.keys.len() - self.sorted == Self::RUN {
            self.merge_last_run();
        }
    }

    /// The numbers of the rows pushed, in `key` order.
    pub fn finish(mut self) -> Vec<u32> {
        self.merge_last_run();
        self.keys.into_iter().map(|(_, index)| index).collect()
    }

    /// Sorts the keys after `sorted` and merges them with those before.
    fn merge_last_run(&mut self) {
        self.keys[self.sorted..].sort_unstable();
        // The stable sort finds the two sorted runs and only merges them. Keys end in the
        // row's number, so no two are equal: the order is the one a sort from scratch gives.
        self.keys.sort();
        self.sorted = self.keys.len();
    }
}

/// Sorts rows in place by `key`, in the same order as [`sorted`].
pub fn sort_rows(rows: &mut [SocketRow], key: Option<SortKey>) {
    rows.sort_by_cached_key(|row| sort_key(row, key));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::model::Proto;

    fn row(proto: Proto, local_port: u16, recv_q: Option<u32>) -> SocketRow {
        SocketRow {
            recv_q,
            ..SocketRow::listener(proto, local_port)
        }
    }

    #[test]
    fn queues_sort_largest_first_and_unknown_last_in_every_form() {
        let rows = [
            row(Proto::Tcp, 1, None),
            row(Proto::Tcp, 2, Some(5)),
            row(Proto::Udp, 3, Some(9)),
        ];
        let key = Some(SortKey::RecvQ);
        assert_eq!(sort_order(&rows, key), [2, 1, 0]);
        let ports: Vec<u16> = sorted(&rows, key).iter().map(|r| r.local_port).collect();
        assert_eq!(ports, [3, 2, 1]);
        let mut in_place = rows.to_vec();
        sort_rows(&mut in_place, key);
        assert_eq!(in_place[0].local_port, 3);
    }

    #[test]
    fn port_order_is_local_then_remote_port_before_protocol_and_address() {
        let connection = |proto, local: [u8; 4], remote_port| SocketRow {
            local_addr: IpAddr::from(local),
            remote_addr: Some(IpAddr::from([127, 0, 0, 1])),
            remote_port: Some(remote_port),
            ..SocketRow::listener(proto, 80)
        };
        let rows = [
            connection(Proto::Udp, [127, 0, 0, 1], 5),
            connection(Proto::Tcp, [127, 0, 0, 2], 9),
            connection(Proto::Tcp, [127, 0, 0, 1], 7),
            SocketRow::listener(Proto::Tcp, 80),
            SocketRow::listener(Proto::Tcp, 79),
        ];
        assert_eq!(sort_order(&rows, Some(SortKey::Port)), [4, 3, 0, 2, 1]);
    }

    #[test]
    fn keys_sorted_in_runs_as_rows_come_give_the_order_of_one_sort() {
        // More rows than a run, ports out of order and repeated, so runs and ties both matter.
        let rows: Vec<SocketRow> = (0..10_000u32)
            .map(|n| row(Proto::Tcp, (n * 7919 % 613) as u16, Some(n % 3)))
            .collect();
        for key in [None, Some(SortKey::Port), Some(SortKey::RecvQ)] {
            let mut one_sort: Vec<u32> = (0..rows.len() as u32).collect();
            one_sort.sort_by_cached_key(|&index| sort_key(&rows[index as usize], key));
            assert_eq!(sort_order(&rows, key), one_sort, "{key:?}");
        }
    }

    #[test]
    fn natural_order_puts_tcp_before_udp_then_ports() {
        let rows = [
            row(Proto::Udp, 1, None),
            row(Proto::Tcp, 9, None),
            row(Proto::Tcp, 4, None),
        ];
        assert_eq!(sort_order(&rows, None), [2, 1, 0]);
    }
}
