//! `soquete sockets`: list TCP/UDP endpoints like `netstat -tunp`, with filters, JSON and a watch mode.

pub mod collect;
pub mod filter;
pub mod model;
pub mod ports;
pub mod view;
mod watch;

use std::cmp::Reverse;

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
    let mut snapshot = collect::snapshot(&config.request)?;
    sort_rows(&mut snapshot.rows, config.sort);
    warn_if_owners_hidden(&snapshot);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if config.json {
        output::write_json_rows(&mut out, &snapshot.rows)
    } else {
        let table = view::socket_table(&snapshot.rows, config.request.show_owners, None);
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

/// Sorts rows by `key`; without a key, by protocol, family, then local and remote endpoint.
pub fn sort_rows(rows: &mut [SocketRow], key: Option<SortKey>) {
    // Protocol, family, local end, remote end: as plain integers, which compare fast.
    let natural = |row: &SocketRow| {
        (
            (row.proto as u8) << 1 | u8::from(row.local_addr.is_ipv6()),
            address_bits(row.local_addr),
            row.local_port,
            row.remote_addr.map_or(0, address_bits),
            row.remote_port,
        )
    };
    // Cached keys: rows are large, so sorting moves indices and permutes the rows once.
    match key {
        None | Some(SortKey::Proto) => rows.sort_by_cached_key(natural),
        Some(SortKey::Port) => {
            rows.sort_by_cached_key(|r| (r.local_port, r.remote_port, natural(r)))
        }
        Some(SortKey::Pid) => rows.sort_by_cached_key(|r| {
            let first = r.pids.as_ref().and_then(|p| p.first().copied());
            (first.is_none(), first, natural(r))
        }),
        Some(SortKey::State) => {
            rows.sort_by_cached_key(|r| (r.state.is_none(), r.state, natural(r)))
        }
        Some(SortKey::RecvQ) => rows.sort_by_cached_key(|r| (Reverse(r.recv_q), natural(r))),
        Some(SortKey::SendQ) => rows.sort_by_cached_key(|r| (Reverse(r.send_q), natural(r))),
    }
}
