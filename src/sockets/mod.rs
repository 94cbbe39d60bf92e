//! `soquete sockets`: list TCP/UDP endpoints like `netstat -tunp`, with filters, JSON and a watch mode.

pub mod collect;
pub mod filter;
pub mod model;
pub mod ports;
pub mod view;
mod watch;

use collect::{Request, Snapshot};
use filter::Filters;
use model::{SocketRow, TcpState};

use crate::cli::{SocketsArgs, SortKey};
use crate::error::Result;
use crate::output::{self, Style};
use crate::platform::Query;

/// What `soquete sockets` runs on, once the command line has been understood.
#[derive(Debug, Clone)]
pub struct Config {
    pub request: Request,
    pub sort: Option<SortKey>,
    pub json: bool,
    pub watch: Option<std::time::Duration>,
}

impl Config {
    /// Turns the flags into what to ask the OS, how to filter and how to show.
    pub fn from_args(args: &SocketsArgs) -> Config {
        let (tcp, udp) = match (args.tcp, args.udp) {
            (false, false) => (true, true),
            both => both,
        };
        let states: Vec<TcpState> = args.states.iter().map(|s| s.0).collect();
        // An explicit --state says which TCP states to show; otherwise -l/-a decide, as in netstat.
        let (tcp_states, udp_connected) = if !states.is_empty() {
            (states.clone(), None)
        } else if args.all {
            (TcpState::ALL.to_vec(), None)
        } else if args.listening {
            (vec![TcpState::Listen], Some(false))
        } else {
            let not_listening = TcpState::ALL.into_iter().filter(|s| *s != TcpState::Listen);
            (not_listening.collect(), Some(true))
        };
        Config {
            request: Request {
                query: Query {
                    tcp,
                    // A state filter speaks of TCP states; UDP sockets have none.
                    udp: udp && states.is_empty(),
                    ipv4: !args.ipv6,
                    ipv6: !args.ipv4,
                    tcp_states,
                    udp_connected,
                },
                filters: Filters {
                    states,
                    ports: args.ports.clone(),
                    classes: args.classes.clone(),
                    pids: args.pids.clone(),
                    process: args.process.as_ref().map(|name| name.to_lowercase()),
                },
                show_owners: args.programs || !args.pids.is_empty() || args.process.is_some(),
            },
            sort: args.sort,
            json: args.json,
            watch: args.watch.map(std::time::Duration::from_secs_f64),
        }
    }
}

/// Runs `soquete sockets`.
pub fn run(args: &SocketsArgs) -> Result<()> {
    let config = Config::from_args(args);
    if let Some(interval) = config.watch {
        return watch::run(&config, interval);
    }
    let snapshot = collect::snapshot(&config.request)?;
    warn_if_owners_hidden(&snapshot);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if config.json {
        output::write_json_rows(&mut out, &sorted(&snapshot.rows, config.sort))
    } else {
        // Filling the table and sorting are independent: one each per core.
        let rows = &snapshot.rows;
        let (mut table, order) = std::thread::scope(|scope| {
            let order = scope.spawn(|| sort_order(rows, config.sort));
            let table = view::socket_table(rows, config.request.show_owners, None);
            (table, order.join())
        });
        table.set_order(order.unwrap_or_else(|_| (0..rows.len() as u32).collect()));
        output::write_table(&mut out, &table, Style::for_stdout())?;
        Ok(())
    }
}

/// Says once, on stderr, why some owners show as `-`, as netstat does.
fn warn_if_owners_hidden(snapshot: &Snapshot) {
    if snapshot.owners_hidden && snapshot.rows.iter().any(|row| row.pids.is_none()) {
        eprintln!(
            "soquete: not all processes could be identified: sockets of other users' processes \
             show '-'; run as root to see them all"
        );
    }
}

fn address_bits(addr: std::net::IpAddr) -> u128 {
    match addr {
        std::net::IpAddr::V4(v4) => u128::from(u32::from(v4)),
        std::net::IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Protocol, family, local end, remote end: as plain integers, which compare fast.
type Natural = (u8, u128, u16, u128, Option<u16>);

/// The sort key of `row` for `key`: a group (unknowns last), a primary value, then the natural
/// order. Without a key: protocol, family, then local and remote endpoint.
fn sort_key(row: &SocketRow, key: Option<SortKey>) -> (u8, u64, Natural) {
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
        Some(SortKey::Port) => (0, u64::from(row.local_port)),
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
    let mut order: Vec<u32> = (0..rows.len() as u32).collect();
    order.sort_by_cached_key(|&index| sort_key(&rows[index as usize], key));
    order
}

/// Sorts rows in place by `key`, in the same order as [`sorted`].
pub fn sort_rows(rows: &mut [SocketRow], key: Option<SortKey>) {
    rows.sort_by_cached_key(|row| sort_key(row, key));
}
