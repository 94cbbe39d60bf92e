//! `soquete sockets`: list TCP/UDP endpoints like `netstat -tunp`, with filters, JSON and a watch mode.

pub mod collect;
pub mod filter;
pub mod flow;
pub mod model;
pub mod ports;
pub mod query;
pub mod sort;
pub mod view;
mod watch;

use crate::error::{Context, Result};
use crate::output::{self, Style};

pub use query::Query;
pub use sort::SortKey;

/// Runs `soquete sockets`.
pub fn run(query: &Query) -> Result<()> {
    let request = query.request();
    if query.timers {
        eprintln!("soquete: -o: timers are not shown (soquete does not read socket timers)");
    }
    if let Some(interval) = query.watch {
        return watch::run(query, &request, interval);
    }
    if query.json {
        let snapshot = collect::snapshot(&request)?;
        print_notes(&snapshot);
        let rows = sort::sorted(&snapshot.rows, query.sort);
        return output::write_json_rows(&mut std::io::stdout().lock(), &rows);
    }
    let columns = view::Columns::of(query, &request);
    // What can be worked out of each row as the OS lists it, while the kernel is still listing
    // the rest: its cells when it needs no owners, its place in the order unless that depends
    // on owners.
    let early_cells = !request.wants_owners();
    let early_order = !request.filters.need_owners() && query.sort != Some(SortKey::Pid);
    let mut table = view::empty_socket_table(&columns);
    let mut order = sort::Order::new(query.sort);
    let mut index = 0;
    let snapshot = collect::snapshot_with(&request, &mut |row| {
        if early_cells {
            view::push_socket_row(&mut table, index, row, &columns);
            index += 1;
        }
        if early_order {
            order.push(row);
        }
    })?;
    let rows = &snapshot.rows;
    let (mut table, order) = match (early_cells, early_order) {
        (true, true) => (table, order.finish()),
        // Filling the table and sorting are independent: one each per core.
        (false, false) => std::thread::scope(|scope| {
            let order = scope.spawn(|| sort::sort_order(rows, query.sort));
            let table = view::socket_table(rows, &columns);
            let order = order.join();
            (
                table,
                order.unwrap_or_else(|_| (0..rows.len() as u32).collect()),
            )
        }),
        (false, true) => (
            view::socket_table_in_parallel(rows, &columns),
            order.finish(),
        ),
        (true, false) => (table, sort::sort_order(rows, query.sort)),
    };
    print_notes(&snapshot);
    if query.no_header {
        table.without_header();
    }
    table.set_order(order);
    let mut out = std::io::stdout().lock();
    output::write_table(&mut out, &table, Style::for_stdout()).context("writing output")
}

fn print_notes(snapshot: &collect::Snapshot) {
    for note in snapshot.notes() {
        eprintln!("{note}");
    }
}
